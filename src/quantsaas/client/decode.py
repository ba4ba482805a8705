"""Pure decoding: the server's JSON (api/wire.py, api/analytics_wire.py) -> typed values.

Prices and sizes arrive as decimal text at the instrument's precision ("64012.50") and become
the model's raw integers without touching a float: the server's own spelling (exactly `scale`
decimals) takes a fast path (drop the point, `int`), anything else goes through
`model.parse_fixed`, which refuses what is not an exact decimal within the scale. Parsed text is
memoised per scale (prices repeat: the book's levels, trades at the touch), in bounded tables.

Nothing here does I/O or keeps stream state: `Decoder.decode` maps one message (a dict from
`orjson.loads`) to one event and raises one of `MALFORMED` on anything it cannot read; the
stream layer decides what a bad message means for its stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeAlias

from quantsaas.client.errors import UnknownSymbol, quote
from quantsaas.client.events import Candle, Greeks, GreekValues, Ofi, Vpin
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    OptionSpec,
    OptionTicker,
    Side,
    Ticker,
    Trade,
    parse_fixed,
    scale_of,
)

JSON: TypeAlias = dict[str, Any]
Event: TypeAlias = Trade | BookSnapshot | BookDelta | Ticker | Candle | Ofi | Vpin | Greeks
"""Every typed value a stream yields (besides Gap)."""
MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError)
"""What decoding a hostile message may raise (InvalidNumber and UnknownSymbol are among them)."""
CACHE_MAX = 1 << 16
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_CACHES: dict[int, dict[str, int]] = {}
NS_PER_MS = 1_000_000
OPTION_CHANNELS = frozenset({"greeks", "options"})
"""Streams named by the option's underlying, while each message names the option itself."""


def _parse(text: str, scale: int) -> int:
    if type(text) is not str:
        raise TypeError(f"expected decimal text, got {quote(text)}")
    if scale:
        if len(text) > scale and text[-scale - 1] == "." and text.isascii():
            digits = text[: -scale - 1] + text[-scale:]
            if digits.isdigit():
                return int(digits)
    elif text.isascii() and text.isdigit():
        return int(text)
    return parse_fixed(text, scale)


def fixed(text: str, scale: int) -> int:
    """Exact decimal text -> raw integer at `scale` decimals (memoised)."""
    cache = _CACHES.get(scale)
    if cache is None:
        cache = _CACHES[scale] = {}
    value = cache.get(text)
    if value is None:
        value = _parse(text, scale)
        if len(cache) >= CACHE_MAX:
            cache.clear()
        cache[text] = value
    return value


def _levels(rows: list[list[str]], price_scale: int, size_scale: int) -> tuple[Level, ...]:
    if not rows:
        return ()
    prices = _CACHES.setdefault(price_scale, {})
    sizes = _CACHES.setdefault(size_scale, {})
    out: list[Level] = []
    for price_text, size_text in rows:
        price = prices.get(price_text)
        if price is None:
            price = fixed(price_text, price_scale)
        size = sizes.get(size_text)
        if size is None:
            size = fixed(size_text, size_scale)
        out.append((price, size))
    return tuple(out)


def _optional(text: str | None, scale: int) -> int | None:
    return None if text is None else fixed(text, scale)


def _float(value: Any) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {quote(value)}")


def _maybe_float(value: Any) -> float | None:
    return None if value is None else _float(value)


def _int(value: Any) -> int:
    if type(value) is int:
        return value
    raise TypeError(f"expected an integer, got {quote(value)}")


def _str(value: Any) -> str:
    if type(value) is str:
        return value
    raise TypeError(f"expected a string, got {quote(value)}")


def instrument_from_json(item: Mapping[str, Any]) -> Instrument:
    """One entry of GET /api/v1/instruments (api/wire.py `instrument_json`) -> Instrument."""
    price_scale, size_scale = _int(item["price_precision"]), _int(item["amount_precision"])
    return Instrument(
        venue=_str(item["venue"]),
        base=_str(item["base"]),
        quote=_str(item["quote"]),
        native_symbol=_str(item["native_symbol"]),
        price_scale=price_scale,
        size_scale=size_scale,
        tick_size=parse_fixed(_str(item["tick_size"]), price_scale),
        lot_size=parse_fixed(_str(item["lot_size"]), size_scale),
    )


def option_instrument(venue: str, data: Mapping[str, Any]) -> Instrument:
    """An option's instrument from its ticker (the listing names spot instruments only).

    Scales are those the server wrote (`mark_price`, `open_interest`); tick and lot are one
    unit of them. Inverse options are priced in the coin, so `quote` is the base currency."""
    underlying = _str(data["underlying"])
    base = underlying.partition("/")[0]
    strike_text = _str(data["strike"])
    strike_scale = scale_of(strike_text)
    spec = OptionSpec(
        underlying=underlying,
        expiry_ns=_int(data["expiry"]) * NS_PER_MS,
        strike=parse_fixed(strike_text, strike_scale),
        strike_scale=strike_scale,
        kind=_str(data["kind"]),
    )
    return Instrument(
        venue=venue,
        base=base,
        quote=base,
        native_symbol=_str(data["instrument_name"]),
        price_scale=scale_of(_str(data["mark_price"])),
        size_scale=scale_of(_str(data["open_interest"])),
        tick_size=1,
        lot_size=1,
        option=spec,
    )


def trade(instrument: Instrument, message: JSON) -> Trade:
    data = message["data"]
    ts_event, ts_recv, trade_id = message["ts_event"], message["ts_recv"], data["id"]
    if type(ts_event) is not int or type(ts_recv) is not int or type(trade_id) is not str:
        raise TypeError("trade: timestamps must be integers and the id a string")
    return Trade(
        instrument,
        fixed(data["price"], instrument.price_scale),
        fixed(data["amount"], instrument.size_scale),
        _SIDES[data["side"]],
        trade_id,
        ts_event,
        ts_recv,
    )


def _book(instrument: Instrument, message: JSON) -> tuple[Any, ...]:
    data = message["data"]
    ts_event, ts_recv, nonce = message["ts_event"], message["ts_recv"], data["nonce"]
    if type(ts_event) is not int or type(ts_recv) is not int or type(nonce) is not int:
        raise TypeError("book: timestamps and nonce must be integers")
    price_scale, size_scale = instrument.price_scale, instrument.size_scale
    bids = _levels(data["bids"], price_scale, size_scale)
    asks = _levels(data["asks"], price_scale, size_scale)
    return instrument, bids, asks, nonce, ts_event, ts_recv


def snapshot(instrument: Instrument, message: JSON) -> BookSnapshot:
    return BookSnapshot(*_book(instrument, message))


def delta(instrument: Instrument, message: JSON) -> BookDelta:
    return BookDelta(*_book(instrument, message))


def ticker(instrument: Instrument, message: JSON) -> Ticker:
    data = message["data"]
    price_scale, size_scale = instrument.price_scale, instrument.size_scale
    return Ticker(
        instrument,
        fixed(data["bid"], price_scale),
        fixed(data["bidVolume"], size_scale),
        fixed(data["ask"], price_scale),
        fixed(data["askVolume"], size_scale),
        _optional(data.get("last"), price_scale),
        _optional(data.get("baseVolume"), size_scale),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def candle(instrument: Instrument, message: JSON) -> Candle:
    data = message["data"]
    price_scale, size_scale = instrument.price_scale, instrument.size_scale
    vwap = data.get("vwap")
    closed = data["closed"]
    if type(closed) is not bool:
        raise TypeError("candle: closed must be a boolean")
    return Candle(
        instrument,
        _str(data["interval"]),
        _int(data["start_ns"]),
        fixed(data["open"], price_scale),
        fixed(data["high"], price_scale),
        fixed(data["low"], price_scale),
        fixed(data["close"], price_scale),
        fixed(data["volume"], size_scale),
        fixed(data["buy_volume"], size_scale),
        None if vwap is None else Decimal(_str(vwap)),
        _int(data["trades"]),
        closed,
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def ofi(instrument: Instrument, message: JSON) -> Ofi:
    data = message["data"]
    size_scale = instrument.size_scale
    return Ofi(
        instrument,
        _int(data["start_ns"]),
        _int(data["width_ms"]) * NS_PER_MS,
        tuple(parse_fixed(_str(value), size_scale) for value in data["ofi"]),
        tuple(_maybe_float(value) for value in data["ofi_normalised"]),
        parse_fixed(_str(data["mean_depth"]), size_scale),
        _int(data["events"]),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def vpin(instrument: Instrument, message: JSON) -> Vpin:
    data = message["data"]
    return Vpin(
        instrument,
        _int(data["bucket"]),
        fixed(data["bucket_volume"], instrument.size_scale),
        _int(data["window"]),
        _float(data["buy_volume"]),
        _float(data["sell_volume"]),
        _maybe_float(data.get("vpin")),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def option_ticker(instrument: Instrument, message: JSON) -> OptionTicker:
    data = message["data"]
    greeks = data["greeks"]
    price_scale = instrument.price_scale
    return OptionTicker(
        instrument,
        fixed(data["mark_price"], price_scale),
        _float(data["mark_iv"]),
        _maybe_float(data.get("bid_iv")),
        _maybe_float(data.get("ask_iv")),
        _optional(data.get("best_bid_price"), price_scale),
        _optional(data.get("best_ask_price"), price_scale),
        _float(data["underlying_price"]),
        _str(data["underlying_index"]),
        _float(data["index_price"]),
        _float(data["interest_rate"]),
        fixed(data["open_interest"], instrument.size_scale),
        _float(greeks["delta"]),
        _float(greeks["gamma"]),
        _float(greeks["vega"]),
        _float(greeks["theta"]),
        _float(greeks["rho"]),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def greeks(instrument: Instrument, message: JSON) -> Greeks:
    ours = message["data"].get("ours")
    values = None
    if ours is not None:
        names = ("price", "delta", "gamma", "vega", "theta", "rho", "coin_delta")
        values = GreekValues(*(_maybe_float(ours.get(name)) for name in names))
    ticker_value = option_ticker(instrument, message)
    return Greeks(instrument, ticker_value, values, ticker_value.ts_event, ticker_value.ts_recv)


Decode: TypeAlias = Callable[[Instrument, JSON], Any]
DECODERS: dict[str, Decode] = {
    "trade": trade,
    "snapshot": snapshot,
    "delta": delta,
    "ticker": ticker,
    "candle": candle,
    "ofi": ofi,
    "vpin": vpin,
    "option_ticker": option_ticker,
    "greeks": greeks,
}
"""Message `type` -> decoder. Other data types (the consolidated market's) are not decoded."""


def stream_key(message: JSON) -> tuple[str, str, str]:
    """The stream (channel, venue, symbol) a data message belongs to: option messages name the
    option, their stream is named by its underlying."""
    channel = message["channel"]
    if channel in OPTION_CHANNELS:
        return channel, message["venue"], message["data"]["underlying"]
    return channel, message["venue"], message["symbol"]


class Decoder:
    """The instrument table and the dispatch on the message `type`."""

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.options: dict[tuple[str, str], Instrument] = {}
        for instrument in instruments:
            self.add(instrument)

    def add(self, instrument: Instrument) -> None:
        self.instruments[instrument.key] = instrument

    def knows(self, venue: str, symbol: str) -> bool:
        return (venue, symbol) in self.instruments

    def instrument(self, venue: str, symbol: str) -> Instrument:
        found = self.instruments.get((venue, symbol))
        if found is None:
            raise UnknownSymbol(f"no instrument {quote(venue)} {quote(symbol)}")
        return found

    def _option(self, venue: str, message: JSON) -> Instrument:
        key = (venue, message["symbol"])
        found = self.options.get(key)
        if found is None:
            found = self.options[key] = option_instrument(venue, message["data"])
        return found

    def decode(self, message: JSON) -> Any:
        """One data message -> its typed event; None for a type the client does not decode."""
        decode = DECODERS.get(message["type"])
        if decode is None:
            return None
        venue = message["venue"]
        if message["channel"] in OPTION_CHANNELS:
            return decode(self._option(venue, message), message)
        instrument = self.instruments.get((venue, message["symbol"]))
        if instrument is None:
            raise UnknownSymbol(f"no instrument {quote(venue)} {quote(message['symbol'])}")
        return decode(instrument, message)
