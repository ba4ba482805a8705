"""Kraken's checksummed L2 book for one pair, kept as the venue's exact decimal text.

Kraken sends no sequence numbers: the CRC32 of the top 10 levels is the only integrity check
(../shared/research/exchanges.md §4.4). The string is built from the text exactly as the venue
wrote it (trailing zeros matter): for each of the 10 best asks (ascending) then the 10 best bids
(descending), price and quantity with the `.` removed and leading zeros stripped; CRC-32 of the
concatenation, unsigned. After every update the book is truncated to the subscribed depth (Kraken
sends no deletes for levels that fall out of scope) and the deletions this causes are reported,
so a downstream `L2Book` stays equal to this one.

Every price and size is checked as it is converted (`feeds.numbers`: finite, bounded digits,
price > 0, size >= 0); a bad one resets the book and raises `MalformedBook`, since the message was
only partly applied. A level beyond the raw range (`model.MAX_RAW`: Kraken's scale of 10 decimals
puts it at 922 million; real books hold joke asks at 9,999,999,997 CHF) stays in this book, so the
checksum still covers what the venue sent, but is left out of published events (`withheld`
counts them): no consumer downstream ever sees a value it cannot store.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass

from quantsaas.errors import ChecksumMismatch, InvalidNumber, MalformedBook, describe
from quantsaas.feeds.numbers import fast_price, fast_size
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Instrument, Level

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)
PRICE_CACHE = 50_000
WIDE = 10**40
"""Bound of the values this book holds (digits are bounded first); MAX_RAW bounds what it
publishes."""

TextLevel = tuple[str, str]
"""(price text, quantity text) exactly as the venue wrote them."""


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum_text(asks: Iterable[TextLevel], bids: Iterable[TextLevel]) -> str:
    """The string Kraken's CRC32 is computed over (asks best first, then bids best first)."""
    parts = [_digits(p) + _digits(q) for p, q in asks]
    parts.extend(_digits(p) + _digits(q) for p, q in bids)
    return "".join(parts)


def checksum(asks: Iterable[TextLevel], bids: Iterable[TextLevel]) -> int:
    return zlib.crc32(checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """One book message: levels in wire order, and the checksum the venue sent (if any)."""

    bids: tuple[TextLevel, ...]
    asks: tuple[TextLevel, ...]
    checksum: int | None
    ts_event: int


class _Side:
    __slots__ = ("text", "digits", "prices", "descending")

    def __init__(self, descending: bool) -> None:
        self.text: dict[int, TextLevel] = {}
        self.digits: dict[int, str] = {}
        """The level's part of the checksum string, computed once when the level is set."""
        self.prices: list[int] = []  # ascending raw prices
        self.descending = descending

    def clear(self) -> None:
        self.text.clear()
        self.digits.clear()
        self.prices.clear()

    def set(self, raw_price: int, raw_size: int, level: TextLevel) -> None:
        if raw_size == 0:
            if self.text.pop(raw_price, None) is not None:
                del self.digits[raw_price]
                del self.prices[bisect_left(self.prices, raw_price)]
            return
        if raw_price not in self.text:
            insort(self.prices, raw_price)
        self.text[raw_price] = level
        self.digits[raw_price] = _digits(level[0]) + _digits(level[1])

    def truncate(self, depth: int) -> list[int]:
        """Drop levels beyond `depth` from the best; returns the dropped raw prices."""
        extra = len(self.prices) - depth
        if extra <= 0:
            return []
        if self.descending:
            dropped = self.prices[:extra]
            del self.prices[:extra]
        else:
            dropped = self.prices[depth:]
            del self.prices[depth:]
        for price in dropped:
            del self.text[price]
            del self.digits[price]
        return dropped

    def best_digits(self, count: int) -> str:
        prices = self.prices[: -count - 1 : -1] if self.descending else self.prices[:count]
        digits = self.digits
        return "".join([digits[price] for price in prices])

    def best(self, count: int) -> list[TextLevel]:
        prices = self.prices[: -count - 1 : -1] if self.descending else self.prices[:count]
        return [self.text[price] for price in prices]


class KrakenBook:
    """Text-exact book of one pair at a subscribed depth, verifying every checksum."""

    __slots__ = (
        "instrument",
        "depth",
        "verify",
        "_bids",
        "_asks",
        "synced",
        "sequence",
        "_prices",
        "withheld",
    )

    def __init__(self, instrument: Instrument, depth: int = 10, verify: bool = True) -> None:
        self.instrument = instrument
        self.depth = depth
        self.verify = verify
        self._bids = _Side(descending=True)
        self._asks = _Side(descending=False)
        self.synced = False
        self.sequence = 0
        """Counts accepted book messages: Kraken has no sequence numbers of its own."""
        self._prices: dict[str, int] = {}
        """Price text -> raw: prices near the top repeat in nearly every update."""
        self.withheld = 0
        """Levels left out of published events: beyond the raw range (kept for the checksum)."""

    def reset(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.synced = False

    def checksum(self) -> int:
        text = self._asks.best_digits(CHECKSUM_LEVELS) + self._bids.best_digits(CHECKSUM_LEVELS)
        return zlib.crc32(text.encode("ascii")) & 0xFFFFFFFF

    def _verify(self, expected: int | None) -> None:
        if not self.verify or expected is None:
            return
        got = self.checksum()
        if got != expected:
            self.reset()
            raise ChecksumMismatch(
                f"kraken {self.instrument.native_symbol}: checksum {got} != venue's {expected}"
            )

    def _levels(self, side: _Side, rows: tuple[TextLevel, ...]) -> list[Level]:
        try:
            return self._apply(side, rows)
        except (InvalidNumber, TypeError, ValueError) as exc:
            self.reset()
            native = self.instrument.native_symbol
            raise MalformedBook(f"kraken {native}: bad level: {describe(exc)}", native) from None

    def _apply(self, side: _Side, rows: tuple[TextLevel, ...]) -> list[Level]:
        ps, ss = self.instrument.price_scale, self.instrument.size_scale
        prices = self._prices
        if len(prices) > PRICE_CACHE:
            prices.clear()
        out = []
        for price_text, qty_text in rows:
            price = prices.get(price_text)
            if price is None:
                price = prices[price_text] = fast_price(price_text, ps, WIDE)
            size = fast_size(qty_text, ss, WIDE)
            side.set(price, size, (price_text, qty_text))
            out.append((price, size))
        return out

    def on_snapshot(self, update: BookUpdate, ts_recv: int) -> BookSnapshot:
        """Replace the book; raises ChecksumMismatch (book reset) if the checksum disagrees,
        MalformedBook (book reset) for a bad level."""
        self.reset()
        self._levels(self._bids, update.bids)
        self._levels(self._asks, update.asks)
        self._bids.truncate(self.depth)
        self._asks.truncate(self.depth)
        self._verify(update.checksum)
        self.synced = True
        self.sequence += 1
        return self.snapshot(update.ts_event, ts_recv)

    def snapshot(self, ts_event: int, ts_recv: int) -> BookSnapshot:
        ss = self.instrument.size_scale
        bids = self._publishable(
            [(p, fast_size(q, ss, WIDE)) for p, (_, q) in self._raw(self._bids)]
        )
        asks = self._publishable(
            [(p, fast_size(q, ss, WIDE)) for p, (_, q) in self._raw(self._asks)]
        )
        return BookSnapshot(self.instrument, bids, asks, self.sequence, ts_event, ts_recv)

    def _publishable(self, levels: list[Level], delta: bool = False) -> tuple[Level, ...]:
        """Levels within the raw range; in a delta, a level whose size left the range is
        published as deleted (downstream it must not keep its old size)."""
        kept: list[Level] = []
        for price, size in levels:
            if price <= MAX_RAW and size <= MAX_RAW:
                kept.append((price, size))
                continue
            self.withheld += 1
            if delta and price <= MAX_RAW:
                kept.append((price, 0))
        return tuple(kept)

    @staticmethod
    def _raw(side: _Side) -> list[tuple[int, TextLevel]]:
        prices = side.prices[::-1] if side.descending else side.prices
        return [(price, side.text[price]) for price in prices]

    def on_update(self, update: BookUpdate, ts_recv: int) -> BookDelta | None:
        """Apply all levels, truncate, verify; returns the delta to publish (with the deletions
        truncation caused). None before the first snapshot. ChecksumMismatch resets the book."""
        if not self.synced:
            return None
        changed_bids = dict(self._levels(self._bids, update.bids))
        changed_asks = dict(self._levels(self._asks, update.asks))
        for price in self._bids.truncate(self.depth):
            changed_bids[price] = 0
        for price in self._asks.truncate(self.depth):
            changed_asks[price] = 0
        self._verify(update.checksum)
        self.sequence += 1
        return BookDelta(
            self.instrument,
            self._publishable(list(changed_bids.items()), delta=True),
            self._publishable(list(changed_asks.items()), delta=True),
            self.sequence,
            update.ts_event,
            ts_recv,
        )

    def top(self, count: int = CHECKSUM_LEVELS) -> tuple[list[TextLevel], list[TextLevel]]:
        """(bids best first, asks best first) as text."""
        return self._bids.best(count), self._asks.best(count)
