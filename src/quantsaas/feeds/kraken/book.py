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
from typing import NamedTuple

from quantsaas.errors import ChecksumMismatch, InvalidNumber, MalformedBook, describe
from quantsaas.feeds.events import book_delta, book_snapshot
from quantsaas.feeds.numbers import codec_for
from quantsaas.model import MAX_RAW, BookDelta, BookSnapshot, Instrument, Level

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)
WIDE = 10**40
"""Bound of the values this book holds (digits are bounded first); MAX_RAW bounds what it
publishes."""

TextLevel = tuple[str, str]
"""(price text, quantity text) exactly as the venue wrote them."""


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def _part(level: TextLevel) -> bytes:
    """One level's part of the checksum string."""
    price, qty = level
    return (price.replace(".", "").lstrip("0") + qty.replace(".", "").lstrip("0")).encode("ascii")


def checksum_text(asks: Iterable[TextLevel], bids: Iterable[TextLevel]) -> str:
    """The string Kraken's CRC32 is computed over (asks best first, then bids best first)."""
    parts = [_digits(p) + _digits(q) for p, q in asks]
    parts.extend(_digits(p) + _digits(q) for p, q in bids)
    return "".join(parts)


def checksum(asks: Iterable[TextLevel], bids: Iterable[TextLevel]) -> int:
    return zlib.crc32(checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF


class BookUpdate(NamedTuple):
    """One book message: levels in wire order, and the checksum the venue sent (if any)."""

    bids: tuple[TextLevel, ...]
    asks: tuple[TextLevel, ...]
    checksum: int | None
    ts_event: int


class _Side:
    """One side: exact text per raw price, raw prices sorted ascending, and the checksum part of
    its best CHECKSUM_LEVELS levels kept until a change reaches them (`top`, None when stale):
    in a deep book most changes are below the top 10, so most checksums reuse both sides."""

    __slots__ = ("text", "digits", "prices", "descending", "top", "edge")

    def __init__(self, descending: bool) -> None:
        self.text: dict[int, TextLevel] = {}
        self.digits: dict[int, bytes] = {}
        """The level's part of the checksum string (ASCII), made when it may be needed."""
        self.prices: list[int] = []  # ascending raw prices
        self.descending = descending
        self.top: bytes | None = None
        self.edge = WIDE if descending else -1
        """The worst price inside `top` (changes beyond it leave `top` as it is); before the
        first checksum, none (so a snapshot makes no checksum parts it may never need)."""

    def clear(self) -> None:
        self.text.clear()
        self.digits.clear()
        self.prices.clear()
        self.top = None
        self.edge = WIDE if self.descending else -1

    def apply(
        self,
        rows: tuple[TextLevel, ...],
        prices: dict[str, int],
        sizes: dict[str, int],
        out: list[Level],
    ) -> int:
        """Set each (text) level, converted through the caches (size 0 deletes; a change that
        reaches the top 10 drops `top`, and a level in it gets its checksum part at once), with
        what to publish appended to `out`: a level beyond the raw range stays here (checksum)
        but is published as deleted, or not at all; returns how many were so withheld. One call
        per side and message: the hot path of every Kraken message."""
        text, digits, levels = self.text, self.digits, self.prices
        descending, withheld = self.descending, 0
        for level in rows:
            price_text, qty_text = level
            price, size = prices[price_text], sizes[qty_text]
            in_top = price >= self.edge if descending else price <= self.edge
            if in_top:
                self.top = None
            if size == 0:
                if text.pop(price, None) is not None:
                    digits.pop(price, None)
                    del levels[bisect_left(levels, price)]
            else:
                if price not in text:
                    insort(levels, price)
                text[price] = level
                if in_top:  # it will be in the next checksum: its part now
                    digits[price] = _part(level)
                else:
                    digits.pop(price, None)
            if price <= MAX_RAW and size <= MAX_RAW:
                out.append((price, size))
            else:
                withheld += 1
                if price <= MAX_RAW:
                    out.append((price, 0))
        return withheld

    def truncate(self, depth: int) -> list[int]:
        """Drop levels beyond `depth` from the best; returns the dropped raw prices (they are
        never in the checksum's top 10, depth being at least 10)."""
        extra = len(self.prices) - depth
        if extra <= 0:
            return []
        if self.descending:
            dropped = self.prices[:extra]
            del self.prices[:extra]
        else:
            dropped = self.prices[depth:]
            del self.prices[depth:]
        if depth < CHECKSUM_LEVELS:
            self.top = None
        text, digits = self.text, self.digits
        for price in dropped:
            del text[price]
            digits.pop(price, None)
        return dropped

    def best_digits(self) -> bytes:
        """The checksum part of the best CHECKSUM_LEVELS levels (kept until a change)."""
        top = self.top
        if top is None:
            prices, count = self.prices, CHECKSUM_LEVELS
            best = prices[: -count - 1 : -1] if self.descending else prices[:count]
            digits = self.digits
            try:
                top = b"".join(map(digits.__getitem__, best))
            except KeyError:  # levels that moved into the top: their parts are made now
                text = self.text
                for price in best:
                    if price not in digits:
                        digits[price] = _part(text[price])
                top = b"".join(map(digits.__getitem__, best))
            self.top = top
            # fewer levels than the checksum takes: any change reaches the top
            if len(best) == count:
                self.edge = best[-1]
            else:
                self.edge = -1 if self.descending else WIDE
        return top

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
        "_codec",
        "withheld",
        "_crc_asks_top",
        "_crc_asks",
        "_crc_bids_top",
        "_crc",
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
        self._codec = codec_for(instrument.price_scale, instrument.size_scale, WIDE)
        """Price and size text -> raw (cached: prices near the top repeat in every update)."""
        self.withheld = 0
        """Levels left out of published events: beyond the raw range (kept for the checksum)."""
        self._crc_asks_top: bytes | None = None
        self._crc_asks = 0
        self._crc_bids_top: bytes | None = None
        self._crc = 0

    def reset(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.synced = False

    def checksum(self) -> int:
        """CRC32 of the asks' top part then the bids': the CRC of an unchanged side is kept
        (the asks' CRC seeds the bids'), so a change on one side costs one side's CRC."""
        asks_top, bids_top = self._asks.best_digits(), self._bids.best_digits()
        if asks_top is not self._crc_asks_top:
            self._crc_asks_top = asks_top
            self._crc_asks = zlib.crc32(asks_top)
            self._crc_bids_top = None
        if bids_top is not self._crc_bids_top:
            self._crc_bids_top = bids_top
            self._crc = zlib.crc32(bids_top, self._crc_asks)
        return self._crc

    def _verify(self, expected: int | None) -> None:
        if not self.verify or expected is None:
            return
        got = self.checksum()
        if got != expected:
            self.reset()
            raise ChecksumMismatch(
                f"kraken {self.instrument.native_symbol}: checksum {got} != venue's {expected}"
            )

    def _apply(self, side: _Side, rows: tuple[TextLevel, ...], out: list[Level]) -> None:
        """Set each level on `side` and append what to publish to `out` (a level beyond the raw
        range is kept for the checksum but published as deleted, or not at all)."""
        codec = self._codec
        try:
            self.withheld += side.apply(rows, codec.prices, codec.sizes, out)
        except (InvalidNumber, TypeError, ValueError) as exc:
            self.reset()
            native = self.instrument.native_symbol
            raise MalformedBook(f"kraken {native}: bad level: {describe(exc)}", native) from None

    def on_snapshot(self, update: BookUpdate, ts_recv: int) -> BookSnapshot:
        """Replace the book; raises ChecksumMismatch (book reset) if the checksum disagrees,
        MalformedBook (book reset) for a bad level."""
        self.reset()
        self._apply(self._bids, update.bids, [])
        self._apply(self._asks, update.asks, [])
        self._bids.truncate(self.depth)
        self._asks.truncate(self.depth)
        self._verify(update.checksum)
        self.synced = True
        self.sequence += 1
        return self.snapshot(update.ts_event, ts_recv)

    def snapshot(self, ts_event: int, ts_recv: int) -> BookSnapshot:
        return book_snapshot(
            self.instrument,
            self._published(self._bids),
            self._published(self._asks),
            self.sequence,
            ts_event,
            ts_recv,
        )

    def _published(self, side: _Side) -> tuple[Level, ...]:
        """A side best first, within the raw range (wider levels are only counted)."""
        sizes = self._codec.sizes
        prices = side.prices[::-1] if side.descending else side.prices
        text = side.text
        kept = []
        for price in prices:
            size = sizes[text[price][1]]
            if price <= MAX_RAW and size <= MAX_RAW:
                kept.append((price, size))
            else:
                self.withheld += 1
        return tuple(kept)

    def on_update(self, update: BookUpdate, ts_recv: int) -> BookDelta | None:
        """Apply all levels, truncate, verify; returns the delta to publish (the changed levels
        in wire order, then the deletions truncation caused; applied in order they leave a book
        equal to this one). None before the first snapshot. ChecksumMismatch resets the book."""
        if not self.synced:
            return None
        bids: list[Level] = []
        asks: list[Level] = []
        depth = self.depth
        if update.bids:
            side = self._bids
            self._apply(side, update.bids, bids)
            if len(side.prices) > depth:
                for price in side.truncate(depth):
                    bids.append((price, 0))
        if update.asks:
            side = self._asks
            self._apply(side, update.asks, asks)
            if len(side.prices) > depth:
                for price in side.truncate(depth):
                    asks.append((price, 0))
        expected = update.checksum
        if self.verify and expected is not None and self.checksum() != expected:
            self._verify(expected)  # raises ChecksumMismatch (book reset)
        self.sequence += 1
        return book_delta(
            self.instrument, tuple(bids), tuple(asks), self.sequence, update.ts_event, ts_recv
        )

    def top(self, count: int = CHECKSUM_LEVELS) -> tuple[list[TextLevel], list[TextLevel]]:
        """(bids best first, asks best first) as text."""
        return self._bids.best(count), self._asks.best(count)
