"""Kraken's checksummed L2 book for one pair, kept as the venue's exact decimal text.

Kraken sends no sequence numbers: the CRC32 of the top 10 levels is the only integrity check
(../shared/research/exchanges.md §4.4). The string is built from the text exactly as the venue
wrote it (trailing zeros matter): for each of the 10 best asks (ascending) then the 10 best bids
(descending), price and quantity with the `.` removed and leading zeros stripped; CRC-32 of the
concatenation, unsigned. After every update the book is truncated to the subscribed depth (Kraken
sends no deletes for levels that fall out of scope) and the deletions this causes are reported,
so a downstream `L2Book` stays equal to this one.

Every price and size is checked as it is converted (`feeds.numbers` rules: finite, digits
bounded before any conversion, price > 0, size >= 0; plain quantities by the same rule inside the
level loop); anything else, including a level that is no number at all (the typed parsers pass
levels on as decoded), resets the book and raises `MalformedBook`, since the message was only
partly applied. A level beyond the raw range (`model.MAX_RAW`: Kraken's scale of 10 decimals
puts it at 922 million; real books hold joke asks at 9,999,999,997 CHF) stays in this book, so the
checksum still covers what the venue sent, but is left out of published events (`withheld`
counts them): no consumer downstream ever sees a value it cannot store.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import msgspec

from quantsaas.errors import ChecksumMismatch, InvalidNumber, MalformedBook, describe
from quantsaas.feeds.numbers import CACHE_LIMIT, fast_price, fast_size, number_text
from quantsaas.model import MAX_RAW, MAX_WHOLE_DIGITS, BookDelta, BookSnapshot, Instrument, Level

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)
WIDE = 10**40
"""Bound of the values this book holds (digits are bounded first); MAX_RAW bounds what it
publishes."""
_POWERS = tuple(10**n for n in range(40))
_END = WIDE + 1


class Row(Protocol):
    """A level as the venue wrote it: price and quantity as exact text (a JSON integer, which
    v2 may send for a whole number, as an int)."""

    @property
    def price(self) -> Any: ...

    @property
    def qty(self) -> Any: ...


class TextLevel(msgspec.Struct, gc=False):
    """A v2 level `{"price": .., "qty": ..}`, decoded straight from the frame (numbers kept as
    their exact text); the v1 parser's array levels have the same two fields."""

    price: Any
    qty: Any


def _digits(text: str) -> str:
    return text.replace(".", "").lstrip("0")


def checksum_text(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> str:
    """The string Kraken's CRC32 is computed over (asks best first, then bids best first)."""
    parts = [_digits(p) + _digits(q) for p, q in asks]
    parts.extend(_digits(p) + _digits(q) for p, q in bids)
    return "".join(parts)


def checksum(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    return zlib.crc32(checksum_text(asks, bids).encode("ascii")) & 0xFFFFFFFF


class BookUpdate(msgspec.Struct, frozen=True, gc=False):
    """One book message: levels in wire order, and the checksum the venue sent (if any). A
    struct: made for every frame, in a third of a NamedTuple's time."""

    bids: Sequence[Row]
    asks: Sequence[Row]
    checksum: int | None
    ts_event: int


class _Numbers(dict[Any, Any]):
    """Venue number (text, or a JSON integer) -> a checked value, made on first sight (`cache[
    text]`) by `convert`, which refuses anything that is not a bounded number. Only text is
    kept (bounded: it starts afresh past CACHE_LIMIT entries): an integer is converted every
    time, as `True == 1` would otherwise find the entry of 1."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[str], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        if type(value) is not str:
            return self.convert(number_text(value, "kraken"))
        if len(self) >= CACHE_LIMIT:
            self.clear()
        found = self[value] = self.convert(value)
        return found


class Codec:
    """Text -> raw price, raw size and the price's checksum digits, cached: prices near the
    top and common sizes repeat in nearly every update. Every value passes `fast_price` /
    `fast_size` (finite, digits bounded before conversion, price > 0, size >= 0) before any
    cache keeps it; a price's digits are only asked for once its value passed."""

    __slots__ = ("prices", "sizes", "digits", "size_scale", "zeros")

    def __init__(self, price_scale: int, size_scale: int) -> None:
        self.size_scale = size_scale
        self.zeros: set[str] = set()
        """Plain texts of a zero quantity seen (`0.00000000`: every deletion; a few hundred
        forms at most: digits are bounded)."""
        self.prices = _Numbers(lambda text: fast_price(text, price_scale, WIDE))
        self.sizes = _Numbers(lambda text: fast_size(text, size_scale, WIDE))
        self.digits = _Numbers(_digits)


_CODECS: dict[tuple[int, int], Codec] = {}


def codec_for(price_scale: int, size_scale: int) -> Codec:
    """The shared codec of these scales (text -> raw does not depend on the pair)."""
    found = _CODECS.get((price_scale, size_scale))
    if found is None:
        found = _CODECS[price_scale, size_scale] = Codec(price_scale, size_scale)
    return found


class _Side:
    """One side as three parallel lists, best first for both: `keys` sorted ascending (a key
    is the raw price for asks, minus it for bids, so the best level is index 0 and the depth a
    slice), `rows` each level as the venue wrote it (for the text), `parts` its part of the
    checksum string, made once when the level is set, so the checksum is a join of the first
    CHECKSUM_LEVELS parts. `top` is that join, kept until a change reaches an index below
    CHECKSUM_LEVELS (None when stale): in a deep book most changes are below the top 10, so
    most checksums reuse both sides' (and their CRC). `keys` ends with `_END`, beyond any key,
    so the index `bisect_left` gives is always one to compare with. `state` holds what
    `apply` reads, in one tuple (the lists are only ever changed in place)."""

    __slots__ = ("keys", "rows", "parts", "sign", "top", "withheld", "state")

    def __init__(self, sign: int, codec: Codec) -> None:
        self.keys: list[int] = [_END]
        self.rows: list[Row] = []
        self.parts: list[str] = []
        self.sign = sign
        self.top: str | None = None
        self.withheld = 0
        self.state = (
            *(self.keys, self.rows, self.parts),
            *(codec.prices, codec.digits, codec.sizes, codec.zeros, codec.size_scale, sign < 0),
        )

    def clear(self) -> None:
        self.keys[:-1] = []
        self.rows.clear()
        self.parts.clear()
        self.top = None

    def apply(self, rows: Sequence[Row], out: list[Level], depth: int) -> None:
        """Set each level (size 0 deletes; a change at an index below CHECKSUM_LEVELS drops
        `top`), then truncate to `depth`, with what to publish appended to `out`: a level
        beyond the raw range stays here (checksum) but is published as deleted, or not at all
        (counted in `withheld`). Prices go through the codec's cache (they repeat); a quantity
        of plain digits is converted here, its digits being its checksum part too (sizes
        rarely repeat), anything else through `fast_size`'s checks. One call per side and
        message: the hot path of every Kraken message."""
        keys, texts, parts, prices, digits_of, sizes, zeros, scale, bids = self.state
        for row in rows:
            text = row.price
            price = prices[text]
            qty = row.qty
            if qty in zeros:
                size = 0
            elif type(qty) is str:
                whole, _, fraction = qty.partition(".")
                digits = whole + fraction
                missing = scale - len(fraction)
                if (
                    missing >= 0
                    and whole
                    and len(whole) <= MAX_WHOLE_DIGITS
                    and digits.isdigit()
                    and digits.isascii()
                ):
                    size = int(digits) * _POWERS[missing]
                    if not size:
                        zeros.add(qty)
                else:  # signs, exponents, junk: the checked path (InvalidNumber)
                    size = sizes[qty]
                    digits = qty.replace(".", "")
            else:  # a JSON integer (anything else raises InvalidNumber)
                size = sizes[qty]
                digits = str(qty)
            key = -price if bids else price
            at = bisect_left(keys, key)
            if size:
                part = digits_of[text] + digits.lstrip("0")
                if keys[at] == key:
                    texts[at] = row
                    parts[at] = part
                else:
                    keys.insert(at, key)
                    texts.insert(at, row)
                    parts.insert(at, part)
                if at < CHECKSUM_LEVELS:
                    self.top = None
            elif keys[at] == key:
                del keys[at], texts[at], parts[at]
                if at < CHECKSUM_LEVELS:
                    self.top = None
            if price <= MAX_RAW and size <= MAX_RAW:
                out.append((price, size))
            else:
                self.withheld += 1
                if price <= MAX_RAW:
                    out.append((price, 0))
        if len(texts) > depth:
            self.truncate(depth, out)

    def truncate(self, depth: int, out: list[Level]) -> None:
        """Drop levels beyond `depth` from the best, each published as deleted (none beyond the
        raw range: never published). `top` needs no update: a side grows past `depth` only by
        inserts of this message, and with `depth` below CHECKSUM_LEVELS (a v1 channel may name
        any depth) each of them was at an index below it, which already dropped `top`."""
        keys, sign = self.keys, self.sign
        for key in keys[depth:-1]:
            price = key * sign
            if price <= MAX_RAW:
                out.append((price, 0))
        del keys[depth:-1], self.rows[depth:], self.parts[depth:]

    def best(self, count: int) -> list[tuple[str, str]]:
        return [
            (number_text(row.price, "kraken"), number_text(row.qty, "kraken"))
            for row in self.rows[:count]
        ]


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
        "_withheld",
        "_crc",
        "_fixed",
    )

    def __init__(self, instrument: Instrument, depth: int = 10, verify: bool = True) -> None:
        self.instrument = instrument
        self.depth = depth
        self.verify = verify
        self._codec = codec_for(instrument.price_scale, instrument.size_scale)
        """Price and size text -> raw (cached: prices near the top repeat in every update)."""
        self._bids = _Side(-1, self._codec)
        self._asks = _Side(1, self._codec)
        self.synced = False
        self.sequence = 0
        """Counts accepted book messages: Kraken has no sequence numbers of its own."""
        self._withheld = 0
        self._fixed = (self._bids, self._asks, depth, verify, instrument)
        """What `on_update` reads and never changes, in one tuple."""
        self._crc = -1
        """The CRC of both sides' kept `top`s (-1: to be computed)."""

    @property
    def withheld(self) -> int:
        """Levels left out of published events: beyond the raw range (kept for the checksum)."""
        return self._withheld + self._bids.withheld + self._asks.withheld

    def reset(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.synced = False

    def checksum(self) -> int:
        """CRC32 of the asks' top part then the bids', in one call (~200 ns over ~340 bytes,
        where two chained calls over ~170 cost ~130 each); kept while neither side's top
        changes. `on_update` does the same inline."""
        asks, bids, crc = self._asks, self._bids, self._crc
        asks_top, bids_top = asks.top, bids.top
        if asks_top is None:
            asks_top = asks.top = "".join(asks.parts[:CHECKSUM_LEVELS])
            crc = -1
        if bids_top is None:
            bids_top = bids.top = "".join(bids.parts[:CHECKSUM_LEVELS])
            crc = -1
        if crc < 0:
            crc = self._crc = zlib.crc32((asks_top + bids_top).encode())
        return crc

    def _mismatch(self, expected: int) -> None:
        got = self.checksum()
        if got != expected:
            self.reset()
            raise ChecksumMismatch(
                f"kraken {self.instrument.native_symbol}: checksum {got} != venue's {expected}"
            )

    def _malformed(self, exc: Exception) -> MalformedBook:
        """The message was only partly applied: the book resets, the caller raises this."""
        self.reset()
        native = self.instrument.native_symbol
        return MalformedBook(f"kraken {native}: bad level: {describe(exc)}", native)

    def on_snapshot(self, update: BookUpdate, ts_recv: int) -> BookSnapshot:
        """Replace the book; raises ChecksumMismatch (book reset) if the checksum disagrees,
        MalformedBook (book reset) for a bad level."""
        self.reset()
        bids, asks = self._bids, self._asks
        counted = bids.withheld, asks.withheld  # a snapshot counts what it leaves out itself
        try:
            bids.apply(update.bids, [], self.depth)
            asks.apply(update.asks, [], self.depth)
        except (InvalidNumber, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed(exc) from None
        bids.withheld, asks.withheld = counted
        if self.verify and update.checksum is not None:
            self._mismatch(update.checksum)
        self.synced = True
        self.sequence += 1
        return self.snapshot(update.ts_event, ts_recv)

    def snapshot(self, ts_event: int, ts_recv: int) -> BookSnapshot:
        return BookSnapshot(
            self.instrument,
            self._published(self._bids),
            self._published(self._asks),
            self.sequence,
            ts_event,
            ts_recv,
        )

    def _published(self, side: _Side) -> tuple[Level, ...]:
        """A side best first, within the raw range (wider levels are only counted)."""
        sizes, sign = self._codec.sizes, side.sign
        kept = []
        for key, row in zip(side.keys, side.rows):  # noqa: B905 (keys has one more: _END)
            price, size = key * sign, sizes[row.qty]
            if price <= MAX_RAW and size <= MAX_RAW:
                kept.append((price, size))
            else:
                self._withheld += 1
        return tuple(kept)

    def on_update(self, update: BookUpdate, ts_recv: int) -> BookDelta | None:
        """Apply all levels, truncate, verify; returns the delta to publish (the changed levels
        in wire order, then the deletions truncation caused; applied in order they leave a book
        equal to this one). None before the first snapshot. ChecksumMismatch resets the book,
        and so does MalformedBook (a bad level: the message was only partly applied)."""
        if not self.synced:
            return None
        bid_side, ask_side, depth, verify, instrument = self._fixed
        bids: list[Level] = []
        asks: list[Level] = []
        try:
            rows = update.bids
            if rows:
                bid_side.apply(rows, bids, depth)
            rows = update.asks
            if rows:
                ask_side.apply(rows, asks, depth)
        except (InvalidNumber, TypeError, ValueError, AttributeError) as exc:
            raise self._malformed(exc) from None
        expected = update.checksum
        if expected is not None and verify:
            crc = self._crc  # the kept CRC while neither side's top changed
            asks_top, bids_top = ask_side.top, bid_side.top
            if asks_top is None or bids_top is None or crc < 0:  # as `checksum`, inline
                if asks_top is None:
                    asks_top = ask_side.top = "".join(ask_side.parts[:CHECKSUM_LEVELS])
                if bids_top is None:
                    bids_top = bid_side.top = "".join(bid_side.parts[:CHECKSUM_LEVELS])
                crc = self._crc = zlib.crc32((asks_top + bids_top).encode())
            if crc != expected:
                self._mismatch(expected)  # raises ChecksumMismatch (book reset)
        sequence = self.sequence = self.sequence + 1
        return BookDelta(
            instrument,
            tuple(bids) if bids else (),
            tuple(asks) if asks else (),
            sequence,
            update.ts_event,
            ts_recv,
        )

    def top(self, count: int = CHECKSUM_LEVELS) -> tuple[list[tuple[str, str]], ...]:
        """(bids best first, asks best first) as the venue's text."""
        return self._bids.best(count), self._asks.best(count)
