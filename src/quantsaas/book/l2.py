"""Exact L2 order book for one instrument.

Levels live in a dict per side (raw price -> raw size) beside a sorted list of prices, so an
update to an existing level is one dict store, and a new or removed level is a binary search plus
a C-level list insert or delete. A size of zero deletes the level (integers compare numerically).
After every update the book checks that it is not crossed; a crossed or locked book is flagged
invalid and refuses further deltas until a fresh snapshot arrives. As a second guard behind the
parsers (which check every number where it is read), a level with a price not above zero, a
negative size or a value beyond the raw range (`model.MAX_RAW`) is refused the same way.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from decimal import Decimal

from quantsaas.errors import BookError, BookNotReady, CrossedBook
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Instrument, Level, format_fixed


def _update_side(levels: dict[int, int], prices: list[int], changes: Iterable[Level]) -> None:
    """Apply one side's changes: a dict store per level, a bisect for new or removed ones."""
    for price, size in changes:
        if size == 0:
            if levels.pop(price, None) is not None:
                del prices[bisect_left(prices, price)]
        elif 0 < size <= MAX_RAW:
            if price not in levels:
                if not 0 < price <= MAX_RAW:
                    raise BookError(f"price {_shown(price)} out of range (size {size})")
                insort(prices, price)
            levels[price] = size
        elif size < 0:
            raise BookError(f"negative size {_shown(size)} at price {_shown(price)}")
        else:
            raise BookError(f"size {_shown(size)} out of range at price {_shown(price)}")


class L2Book:
    """Bids and asks at exact fixed-point prices, with a version counter."""

    __slots__ = (
        "instrument",
        "_bids",
        "_asks",
        "_bid_prices",
        "_ask_prices",
        "version",
        "sequence",
        "_valid",
        "ts_event",
        "ts_recv",
    )

    _update_side = staticmethod(_update_side)
    """The raw level application, also timed on its own by bench/bench_book.py."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._bids: dict[int, int] = {}
        self._asks: dict[int, int] = {}
        self._bid_prices: list[int] = []
        self._ask_prices: list[int] = []
        self.version = 0
        """Incremented on every accepted snapshot or delta."""
        self.sequence = 0
        """Sequence of the last accepted venue message."""
        self._valid = False
        self.ts_event = 0
        self.ts_recv = 0

    def apply_snapshot(self, snapshot: BookSnapshot) -> None:
        """Replace the whole book; a crossed snapshot raises CrossedBook and leaves it invalid."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()
        self._valid = False
        _update_side(self._bids, self._bid_prices, snapshot.bids)
        _update_side(self._asks, self._ask_prices, snapshot.asks)
        self._accept(snapshot.sequence, snapshot.ts_event, snapshot.ts_recv)

    def apply_delta(self, delta: BookDelta) -> None:
        """Apply changed levels (absolute sizes, zero deletes).

        Raises BookNotReady while the book awaits a snapshot, and CrossedBook when the result is
        crossed; in both cases the book is (or stays) invalid. (The hot path: one call per venue
        frame, so the crossed check of `_accept` is written out here.)
        """
        if not self._valid:
            raise BookNotReady(
                f"{self.instrument.venue} {self.instrument.symbol}: awaiting snapshot"
            )
        self._valid = False
        bid_prices, ask_prices = self._bid_prices, self._ask_prices
        if delta.bids:
            _update_side(self._bids, bid_prices, delta.bids)
        if delta.asks:
            _update_side(self._asks, ask_prices, delta.asks)
        if bid_prices and ask_prices and bid_prices[-1] >= ask_prices[0]:
            self._accept(delta.sequence, delta.ts_event, delta.ts_recv)  # raises CrossedBook
        self._valid = True
        self.version += 1
        self.sequence = delta.sequence
        self.ts_event = delta.ts_event
        self.ts_recv = delta.ts_recv

    @property
    def valid(self) -> bool:
        """True while the book holds an accepted snapshot and every delta since applied cleanly."""
        return self._valid

    def invalidate(self) -> None:
        self._valid = False

    def age_ns(self, at_ns: int) -> int | None:
        """Time since the last accepted update was received (its `ts_recv`); None while the
        book is not valid. Compared with the venue's bound it tells a stale book."""
        if not self._valid or not self.ts_recv:
            return None
        return max(0, at_ns - self.ts_recv)

    def _accept(self, sequence: int, ts_event: int, ts_recv: int) -> None:
        if self._bid_prices and self._ask_prices and self._bid_prices[-1] >= self._ask_prices[0]:
            raise CrossedBook(
                f"{self.instrument.venue} {self.instrument.symbol}: best bid "
                f"{self.instrument.format_price(self._bid_prices[-1])} >= best ask "
                f"{self.instrument.format_price(self._ask_prices[0])}"
            )
        self._valid = True
        self.version += 1
        self.sequence = sequence
        self.ts_event = ts_event
        self.ts_recv = ts_recv

    def best_bid(self) -> Level | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return (price, self._bids[price])

    def best_ask(self) -> Level | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return (price, self._asks[price])

    def spread(self) -> int | None:
        """Best ask minus best bid, raw at the instrument's price scale."""
        if not self._bid_prices or not self._ask_prices:
            return None
        return self._ask_prices[0] - self._bid_prices[-1]

    def mid(self) -> Decimal | None:
        if not self._bid_prices or not self._ask_prices:
            return None
        doubled = self._ask_prices[0] + self._bid_prices[-1]
        # (a + b) / 2 == (a + b) * 5 / 10: exact at one more decimal, no division rounding
        return Decimal(format_fixed(doubled * 5, self.instrument.price_scale + 1))

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bid levels, best (highest) first."""
        prices = self._bid_prices
        chosen = prices[::-1] if depth is None else prices[: -depth - 1 : -1] if depth > 0 else []
        return [(price, self._bids[price]) for price in chosen]

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels, best (lowest) first."""
        prices = self._ask_prices
        chosen = prices if depth is None else prices[: max(depth, 0)]
        return [(price, self._asks[price]) for price in chosen]

    def level_count(self) -> tuple[int, int]:
        return (len(self._bid_prices), len(self._ask_prices))

    def size_at(self, is_bid: bool, price: int) -> int:
        return (self._bids if is_bid else self._asks).get(price, 0)

    def cumulative_depth(self, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """Running total of size from the best level outward, per side."""
        return (_running_total(self.bids(depth)), _running_total(self.asks(depth)))

    def to_snapshot(self, depth: int | None = None) -> BookSnapshot:
        if not self.valid:
            raise BookNotReady(f"{self.instrument.venue} {self.instrument.symbol}: no valid book")
        return BookSnapshot(
            instrument=self.instrument,
            bids=tuple(self.bids(depth)),
            asks=tuple(self.asks(depth)),
            sequence=self.sequence,
            ts_event=self.ts_event,
            ts_recv=self.ts_recv,
        )


def _shown(value: int) -> str:
    """An int for a message: a hostile one may be too long to print (or to print cheaply)."""
    return str(value) if -MAX_RAW <= value <= MAX_RAW else f"<{value.bit_length()}-bit integer>"


def _running_total(levels: list[Level]) -> list[Level]:
    total = 0
    out: list[Level] = []
    for price, size in levels:
        total += size
        out.append((price, total))
    return out
