"""Venue numbers -> exact raw integers, checked where they are parsed, fast on plain venue text.

Every price and size a feed reads goes through `fast_price` / `fast_size` (or a `FixedCache`
built on them): finite, digits bounded before any conversion (`model.MAX_NUMBER_TEXT`,
`model.MAX_WHOLE_DIGITS`), within the raw range (`model.MAX_RAW`), a price above zero and a
size not below zero. Anything else raises `InvalidNumber` (a ValueError), which each parser
turns into a counted malformed frame. Plain venue text ("0.35130000" at its scale) takes a
shortcut that never reaches `model.parse_fixed`; everything else (signs, exponents, junk, extra
decimals) goes through it and its checks. A venue whose book must hold values wider than
MAX_RAW (Kraken's text-exact checksummed book) passes a wider `limit` and keeps them apart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from quantsaas.errors import InvalidNumber, quote
from quantsaas.model import MAX_RAW, MAX_WHOLE_DIGITS, Level, parse_fixed, parse_price, parse_size

_POWERS: tuple[int, ...] = tuple(10**n for n in range(40))

CACHE_LIMIT = 20_000
"""Entries a `FixedCache` keeps before it starts afresh (bounded against hostile input)."""


def fast_fixed(text: str, scale: int) -> int:
    """`model.parse_fixed` with a fast path for plain venue text (any sign, via the slow path)."""
    whole, _, fraction = text.partition(".")
    missing = scale - len(fraction)
    if (
        missing >= 0
        and len(whole) <= MAX_WHOLE_DIGITS
        and whole.isdigit()
        and (fraction.isdigit() or not fraction)
        and text.isascii()
    ):
        raw = int(whole + fraction) * _POWERS[missing]
        if raw <= MAX_RAW:
            return raw
    return parse_fixed(text, scale)


def fast_price(text: str, scale: int, limit: int = MAX_RAW) -> int:
    """A price: plain digits in range and above zero, else `model.parse_price`'s verdict."""
    whole, _, fraction = text.partition(".")
    missing = scale - len(fraction)
    if (
        missing >= 0
        and len(whole) <= MAX_WHOLE_DIGITS
        and whole.isdigit()
        and (fraction.isdigit() or not fraction)
        and text.isascii()
    ):
        raw = int(whole + fraction) * _POWERS[missing]
        if 0 < raw <= limit:
            return raw
    return parse_price(text, scale, limit)


def fast_size(text: str, scale: int, limit: int = MAX_RAW) -> int:
    """A size: plain digits in range (zero deletes a level), else `model.parse_size`'s verdict."""
    whole, _, fraction = text.partition(".")
    missing = scale - len(fraction)
    if (
        missing >= 0
        and len(whole) <= MAX_WHOLE_DIGITS
        and whole.isdigit()
        and (fraction.isdigit() or not fraction)
        and text.isascii()
    ):
        raw = int(whole + fraction) * _POWERS[missing]
        if raw <= limit:
            return raw
    return parse_size(text, scale, limit)


def number_text(value: object, venue: str) -> str:
    """A JSON number kept as text (or an int) -> its text; anything else is not a number."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise InvalidNumber(f"{venue}: expected a number, got {quote(value, 40)}")


MAX_MS = MAX_RAW // 1_000_000
"""The latest millisecond timestamp whose nanoseconds still fit MAX_RAW (year 2262)."""


def checked_id(value: object) -> int:
    """An update id, change id or sequence number: a JSON integer in 0..MAX_RAW (they are
    recorded as int64, like prices)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RAW:
        return value
    raise InvalidNumber(f"expected an id in 0..2**63-1, got {quote(value, 40)}")


def ms_to_ns(value: object) -> int:
    """A venue's millisecond epoch timestamp (a JSON integer) -> ns, within int64."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MS:
        return value * 1_000_000
    raise InvalidNumber(f"expected a millisecond timestamp, got {quote(value, 40)}")


_SECONDS: dict[str, int] = {}
"""`YYYY-MM-DDTHH:MM:SS` -> seconds since the epoch, for every head seen (bounded)."""
_HEAD_NS: dict[str, int] = {}
"""The same heads with their `.` (`YYYY-MM-DDTHH:MM:SS.`) -> ns: the fast path's one lookup."""
_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def iso_ns(text: object) -> int:
    """`2021-04-17T16:43:37.078325Z` (UTC: `Z`, `+00:00` or nothing; 0-9 decimals) -> exact ns
    since the epoch, without `datetime`: the first 19 characters are checked and converted once
    per second seen (a bounded cache; frames share their second), the fraction is digits. The
    venues' own form (decimals and `Z`) takes a shortcut: one lookup of its head with the `.`,
    then the fraction (ASCII digits only: `int` would also take spaces, `_` and other scripts'
    digits)."""
    if type(text) is str:
        base = _HEAD_NS.get(text[:20])
        if base is not None:
            fraction = text[20:-1]
            digits = len(fraction)
            if 0 < digits <= 9 and text[-1] == "Z" and fraction.isdigit() and fraction.isascii():
                return base + int(fraction) * _POWERS[9 - digits]
    return _iso_ns(text)


def _iso_ns(text: object) -> int:
    if not isinstance(text, str) or not 19 <= len(text) <= 40:
        raise InvalidNumber(f"not an ISO 8601 UTC time: {quote(text, 40)}")
    head = text[:19]
    seconds = _SECONDS.get(head)
    if seconds is None:
        seconds = _head_seconds(head, text)
        if len(_SECONDS) >= CACHE_LIMIT:
            _SECONDS.clear()
            _HEAD_NS.clear()
        _SECONDS[head] = seconds
    if text[19:20] == ".":
        _HEAD_NS[text[:20]] = seconds * 1_000_000_000  # never more heads than _SECONDS holds
    rest = text[19:]
    if rest.endswith(("Z", "z")):
        rest = rest[:-1]
    elif rest.endswith("+00:00"):
        rest = rest[:-6]
    if not rest:
        return seconds * 1_000_000_000
    fraction = rest[1:]
    if rest[0] != "." or not 0 < len(fraction) <= 9 or not (fraction.isdigit() and rest.isascii()):
        raise InvalidNumber(f"not an ISO 8601 UTC time: {quote(text, 40)}")
    return seconds * 1_000_000_000 + int(fraction) * _POWERS[9 - len(fraction)]


def _head_seconds(head: str, text: str) -> int:
    digits = head[0:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:19]
    if (
        head[4] != "-"
        or head[7] != "-"
        or head[10] not in "Tt "
        or head[13] != ":"
        or head[16] != ":"
        or not (digits.isdigit() and digits.isascii())
    ):
        raise InvalidNumber(f"not an ISO 8601 UTC time: {quote(text, 40)}")
    year, month, day = int(digits[0:4]), int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if not (
        1970 <= year
        and 1 <= month <= 12
        and 1 <= day <= month_days[month - 1]
        and hour < 24
        and minute < 60
        and second < 60
    ):
        raise InvalidNumber(f"not a valid UTC time: {quote(text, 40)}")
    days = _days_since_epoch(year) + _DAYS_BEFORE_MONTH[month - 1] + (month > 2 and leap) + day - 1
    return ((days * 24 + hour) * 60 + minute) * 60 + second


def _days_since_epoch(year: int) -> int:
    """Days from 1970-01-01 to January 1st of `year` (proleptic Gregorian)."""
    y = year - 1
    return 365 * (year - 1970) + (y // 4 - y // 100 + y // 400) - 477


def seconds_text_ns(text: object) -> int:
    """Kraken v1's `"1618678117.243818"` (epoch seconds as decimal text) -> exact ns."""
    if type(text) is str and len(text) == 17 and text[10] == "." and text.isascii():
        whole, fraction = text[:10], text[11:]  # the venue's own form: a shortcut
        if whole.isdigit() and fraction.isdigit():
            at = int(whole) * 1_000_000_000 + int(fraction) * 1000
            if at <= MAX_RAW:
                return at
    if isinstance(text, str) and len(text) <= 21:
        whole, _, fraction = text.partition(".")
        if (
            0 < len(whole) <= 10
            and len(fraction) <= 9
            and whole.isdigit()
            and (fraction.isdigit() or not fraction)
            and text.isascii()
        ):
            at = int(whole) * 1_000_000_000 + int(fraction or "0") * _POWERS[9 - len(fraction)]
            if at <= MAX_RAW:
                return at
    raise InvalidNumber(f"expected epoch seconds within int64 ns, got {quote(text, 40)}")


class FixedCache(dict[str, int]):
    """Number text -> checked raw value, converted on first sight (`cache[text]`), bounded: it
    starts afresh past CACHE_LIMIT entries, so hostile input cannot grow it. Only values that
    passed `fast_price` / `fast_size` are ever stored, so a hit is as checked as a miss."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[str], int]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, text: str) -> int:
        if len(self) >= CACHE_LIMIT:
            self.clear()
        value = self[text] = self.convert(text)
        return value


class LevelCodec:
    """Venue level text -> exact (price, size) tuples at one pair of scales. Prices near the
    top and common sizes repeat in nearly every frame, so most numbers are one dict lookup: a
    hot loop converts a level as `(codec.prices[p], codec.sizes[q])` (InvalidNumber if bad)."""

    __slots__ = ("price_scale", "size_scale", "limit", "prices", "sizes")

    def __init__(self, price_scale: int, size_scale: int, limit: int = MAX_RAW) -> None:
        self.price_scale = price_scale
        self.size_scale = size_scale
        self.limit = limit
        self.prices = FixedCache(lambda text: fast_price(text, price_scale, limit))
        self.sizes = FixedCache(lambda text: fast_size(text, size_scale, limit))

    def levels(self, rows: Iterable[tuple[str, str]]) -> tuple[Level, ...]:
        """`[[price, size], ...]` text pairs -> level tuples (InvalidNumber if one is bad)."""
        prices, sizes = self.prices, self.sizes
        out = []
        for p, q in rows:
            out.append((prices[p], sizes[q]))
        return tuple(out)


_CODECS: dict[tuple[int, int, int], LevelCodec] = {}


def codec_for(price_scale: int, size_scale: int, limit: int = MAX_RAW) -> LevelCodec:
    """The shared codec of these scales (text -> raw does not depend on the instrument)."""
    key = (price_scale, size_scale, limit)
    found = _CODECS.get(key)
    if found is None:
        found = _CODECS[key] = LevelCodec(price_scale, size_scale, limit)
    return found
