"""Immutable value types shared by every stage: instruments and market events.

Prices and sizes are exact fixed-point integers: an instrument has a `price_scale` and a
`size_scale` (number of decimals), and a raw value `r` means `r * 10**-scale`. Parsing goes from
the venue's decimal text straight to the integer, never through a binary float. Timestamps are
integer nanoseconds since the Unix epoch: `ts_event` is the venue's time, `ts_recv` ours.

Market events are frozen msgspec structs (immutable, hashable, equal field by field, like a
frozen dataclass): one is built per venue frame, and a struct is built in C, ~6x faster than a
frozen dataclass (whose `__init__` sets each field through `object.__setattr__`). They hold no
reference cycles, so they are not tracked by the garbage collector (`gc=False`).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol, TypeAlias

import msgspec

from quantsaas.errors import InvalidNumber, quote

Level: TypeAlias = tuple[int, int]
"""One price level: (raw price, raw size)."""

_DIGITS = frozenset("0123456789")

MAX_RAW = 2**63 - 1
"""The largest raw price or size: every value must fit a signed 64-bit integer, as the recorded
history stores it (Parquet int64) and as every consumer may assume."""
MAX_NUMBER_TEXT = 64
"""The longest number text accepted. Checked before any conversion: a 5,000-digit number is a
malformed value, not something to compute (Python refuses past 4,300 digits, slowly)."""
MAX_WHOLE_DIGITS = 19
"""More integer digits than this cannot fit MAX_RAW at any scale."""


def parse_fixed(text: str, scale: int, limit: int | None = None) -> int:
    """Exact decimal text -> raw integer at `scale` decimals.

    Trailing zeros beyond the scale are accepted ("0.35130000" at scale 4 is 3513); a non-zero
    digit beyond the scale is an error, as is anything that is not a finite decimal number, text
    longer than MAX_NUMBER_TEXT, an exponent that would build a number of more than ~40 digits
    (checked before any big number is built, so `1e999999` costs nothing) and, when `limit` is
    given, a value beyond +-limit (`parse_price`/`parse_size` bound to MAX_RAW).
    """
    if not isinstance(text, str):
        raise InvalidNumber(f"not decimal text: {quote(text)}")
    if len(text) > MAX_NUMBER_TEXT:
        raise InvalidNumber(f"number text too long: {quote(text, 24)}")
    body = text.strip()
    negative = body.startswith("-")
    if negative or body.startswith("+"):
        body = body[1:]
    if "e" in body or "E" in body:
        return _parse_scientific(text, scale, limit)
    whole, _, fraction = body.partition(".")
    if not whole and not fraction:
        raise InvalidNumber(f"not a decimal number: {text!r}")
    if not _DIGITS.issuperset(whole) or not _DIGITS.issuperset(fraction):
        raise InvalidNumber(f"not a decimal number: {text!r}")
    if len(fraction) > scale:
        extra = fraction[scale:]
        if extra.strip("0"):
            raise InvalidNumber(f"{text!r} has more than {scale} decimals")
        fraction = fraction[:scale]
    if len(whole.lstrip("0")) > MAX_WHOLE_DIGITS + 20:
        raise InvalidNumber(f"{text!r} is out of range at {scale} decimals")
    raw = int((whole or "0") + fraction.ljust(scale, "0"))
    if limit is not None and raw > limit:
        raise InvalidNumber(f"{text!r} is out of range at {scale} decimals")
    return -raw if negative else raw


def parse_price(text: str, scale: int, limit: int = MAX_RAW) -> int:
    """`parse_fixed` for a price: it must be positive (a level or trade at 0 or below is not
    a price any venue quotes; it is a poisoned value)."""
    raw = parse_fixed(text, scale, limit)
    if raw <= 0:
        raise InvalidNumber(f"price must be positive, not {quote(text, 40)}")
    return raw


def parse_size(text: str, scale: int, limit: int = MAX_RAW) -> int:
    """`parse_fixed` for a size: zero (delete the level) or positive."""
    raw = parse_fixed(text, scale, limit)
    if raw < 0:
        raise InvalidNumber(f"size must not be negative, not {quote(text, 40)}")
    return raw


def _parse_scientific(text: str, scale: int, limit: int | None) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise InvalidNumber(f"not a decimal number: {text!r}") from exc
    return decimal_to_raw(value, scale, limit)


def decimal_to_raw(value: Decimal, scale: int, limit: int | None = None) -> int:
    """Exact Decimal -> raw integer; refuses values finer than the scale, of more than ~40
    digits, or (when given) beyond +-`limit`.

    Works on the digit tuple, so no Decimal context precision can round the result, and bounds
    the exponent before any power of ten is built.
    """
    if not value.is_finite():
        raise InvalidNumber(f"not a finite number: {quote(str(value), 40)}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if len(digits) > MAX_NUMBER_TEXT:
        raise InvalidNumber(f"too many digits: {quote(str(value), 24)}")
    coefficient = int("".join(map(str, digits)) or "0")
    if coefficient == 0:
        return 0
    shift = exponent + scale
    if shift > MAX_WHOLE_DIGITS + 20:
        raise InvalidNumber(f"{quote(str(value), 40)} is out of range at {scale} decimals")
    if -shift > len(digits):  # smaller than one unit at this scale, and not zero
        raise InvalidNumber(f"{quote(str(value), 40)} has more than {scale} decimals")
    factor: int = 10 ** abs(shift)
    if shift >= 0:
        raw = coefficient * factor
    else:
        raw, remainder = divmod(coefficient, factor)
        if remainder:
            raise InvalidNumber(f"{value} has more than {scale} decimals")
    if limit is not None and raw > limit:
        raise InvalidNumber(f"{quote(str(value), 40)} is out of range at {scale} decimals")
    return -raw if sign else raw


def format_fixed(raw: int, scale: int) -> str:
    """Raw integer -> decimal text with exactly `scale` decimals ("0.35130000")."""
    if scale == 0:
        return str(raw)
    sign = "-" if raw < 0 else ""
    digits = str(abs(raw)).rjust(scale + 1, "0")
    return f"{sign}{digits[:-scale]}.{digits[-scale:]}"


def scale_of(text: str) -> int:
    """Number of decimals written in `text` ("0.0010" -> 4)."""
    _, _, fraction = text.strip().partition(".")
    return len(fraction)


def symbol_to_path(symbol: str) -> str:
    """Canonical `BTC/USD` -> `BTC-USD`, the form used inside URL paths."""
    return symbol.replace("/", "-")


def symbol_from_text(text: str) -> str:
    """A pair written in configuration (`BTC/USD`, `BTC-USD`, `btc-usd`) -> `BTC/USD`.

    Only for pairs: every `-` becomes `/`. What a caller sends goes through
    `quantsaas.symbols.resolve`, which matches the names instruments have instead."""
    return text.strip().upper().replace("-", "/")


def now_ns() -> int:
    return time.time_ns()


class Side(enum.Enum):
    """Aggressor side of a trade."""

    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """What makes an instrument a European option: its underlying, expiry, strike and kind."""

    underlying: str
    """Canonical symbol of the underlying (`BTC/USD`), on the same venue."""
    expiry_ns: int
    """Expiry instant (Deribit: 08:00 UTC on the expiry date)."""
    strike: int
    """Raw at `strike_scale` decimals, in the underlying's quote currency."""
    strike_scale: int
    kind: str
    """"call" or "put"."""

    def __post_init__(self) -> None:
        if self.kind not in ("call", "put"):
            raise InvalidNumber(f"option kind must be 'call' or 'put', not {self.kind!r}")
        if self.strike <= 0:
            raise InvalidNumber(f"option strike must be positive, not {self.strike}")

    @property
    def strike_decimal(self) -> Decimal:
        return Decimal(format_fixed(self.strike, self.strike_scale))


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable pair on one venue, with its exact price and size grids.

    An option (`option` set) is named by its venue symbol (`BTC-27DEC26-60000-C`) instead of
    `BASE/QUOTE`; its prices are in `quote` (the coin, for Deribit's inverse options).
    """

    venue: str
    base: str
    quote: str
    native_symbol: str
    price_scale: int
    size_scale: int
    tick_size: int
    """Smallest price step, raw at `price_scale`."""
    lot_size: int
    """Smallest size step, raw at `size_scale`."""
    option: OptionSpec | None = None
    symbol: str = field(init=False)

    def __post_init__(self) -> None:
        name = f"{self.base}/{self.quote}" if self.option is None else self.native_symbol
        object.__setattr__(self, "symbol", name)
        if self.tick_size <= 0 or self.lot_size <= 0:
            raise InvalidNumber(f"{self.venue} {self.symbol}: tick and lot sizes must be positive")

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.symbol)

    @property
    def path_symbol(self) -> str:
        return symbol_to_path(self.symbol)

    def price(self, text: str) -> int:
        return parse_fixed(text, self.price_scale)

    def size(self, text: str) -> int:
        return parse_fixed(text, self.size_scale)

    def format_price(self, raw: int) -> str:
        return format_fixed(raw, self.price_scale)

    def format_size(self, raw: int) -> str:
        return format_fixed(raw, self.size_scale)

    def price_decimal(self, raw: int) -> Decimal:
        return Decimal(format_fixed(raw, self.price_scale))

    def size_decimal(self, raw: int) -> Decimal:
        return Decimal(format_fixed(raw, self.size_scale))

    def on_tick_grid(self, raw_price: int) -> bool:
        return raw_price % self.tick_size == 0

    def on_lot_grid(self, raw_size: int) -> bool:
        return raw_size % self.lot_size == 0


class Trade(msgspec.Struct, frozen=True, gc=False):
    instrument: Instrument
    price: int
    size: int
    side: Side
    trade_id: str
    ts_event: int
    ts_recv: int


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """Full L2 book; bids best (highest) first, asks best (lowest) first."""

    instrument: Instrument
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    sequence: int
    ts_event: int
    ts_recv: int


class BookDelta(msgspec.Struct, frozen=True, gc=False):
    """Changed L2 levels with their new absolute sizes; a size of zero deletes the level."""

    instrument: Instrument
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    sequence: int
    ts_event: int
    ts_recv: int


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """Top of book and last-trade summary as a venue publishes it."""

    instrument: Instrument
    bid: int
    bid_size: int
    ask: int
    ask_size: int
    last: int | None
    volume_24h: int | None
    ts_event: int
    ts_recv: int


class OptionTicker(msgspec.Struct, frozen=True, gc=False):
    """An option's ticker as Deribit publishes it (`ticker.{instrument}` channel).

    `mark_price` and the best prices are raw at the option's `price_scale`, in its quote
    currency (the coin for inverse options); IVs are in percent (60.86 = 60.86 %), as Deribit
    sends them; greeks are in Deribit's units (USD delta and gamma, vega USD per vol point,
    theta USD per day, rho USD per 1 %). `underlying_price` is the price of the future the
    option is priced from (already holding the basis), `index_price` the spot index.
    """

    instrument: Instrument
    mark_price: int
    mark_iv: float
    bid_iv: float | None
    ask_iv: float | None
    best_bid_price: int | None
    best_ask_price: int | None
    underlying_price: float
    underlying_index: str
    index_price: float
    interest_rate: float
    open_interest: int
    """Raw at `size_scale`, in contracts."""
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    ts_event: int
    ts_recv: int


MarketEvent: TypeAlias = Trade | BookSnapshot | BookDelta | Ticker | OptionTicker


class Stamped(Protocol):
    """Anything published on the bus: market events and derived ones (candles, analytics)."""

    @property
    def instrument(self) -> Instrument: ...

    @property
    def ts_event(self) -> int: ...

    @property
    def ts_recv(self) -> int: ...
