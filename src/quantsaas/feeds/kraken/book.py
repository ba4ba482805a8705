"""Kraken's checksummed L2 book for one pair, kept as the venue's exact decimal text.

Kraken sends no sequence numbers: the CRC32 of the top 10 levels is the only integrity check
(../shared/research/exchanges.md §4.4). The string is built from the text exactly as the venue
wrote it (trailing zeros matter): for each of the 10 best asks (ascending) then the 10 best bids
(descending), price and quantity with the `.` removed and leading zeros stripped; CRC-32 of the
concatenation, unsigned. After every update the book is truncated to the subscribed depth (Kraken
sends no deletes for levels that fall out of scope) and the deletions this causes are reported,
so a downstream `L2Book` stays equal to this one.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass

from quantsaas.errors import ChecksumMismatch
from quantsaas.feeds.instruments import fast_fixed
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)
PRICE_CACHE = 50_000

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

    __slots__ = ("instrument", "depth", "verify", "_bids", "_asks", "synced", "sequence", "_prices")

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
        ps, ss = self.instrument.price_scale, self.instrument.size_scale
        prices = self._prices
        if len(prices) > PRICE_CACHE:
            prices.clear()
        out = []
        for price_text, qty_text in rows:
            price = prices.get(price_text)
            if price is None:
                price = prices[price_text] = fast_fixed(price_text, ps)
            size = fast_fixed(qty_text, ss)
            side.set(price, size, (price_text, qty_text))
            out.append((price, size))
        return out

    def on_snapshot(self, update: BookUpdate, ts_recv: int) -> BookSnapshot:
        """Replace the book; raises ChecksumMismatch (book reset) if the checksum disagrees."""
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
        bids = tuple((p, fast_fixed(q, ss)) for p, (_, q) in self._raw(self._bids))
        asks = tuple((p, fast_fixed(q, ss)) for p, (_, q) in self._raw(self._asks))
        return BookSnapshot(self.instrument, bids, asks, self.sequence, ts_event, ts_recv)

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
            tuple(changed_bids.items()),
            tuple(changed_asks.items()),
            self.sequence,
            update.ts_event,
            ts_recv,
        )

    def top(self, count: int = CHECKSUM_LEVELS) -> tuple[list[TextLevel], list[TextLevel]]:
        """(bids best first, asks best first) as text."""
        return self._bids.best(count), self._asks.best(count)
