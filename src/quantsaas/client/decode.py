"""Pure decoding: the server's JSON (api/wire.py, api/analytics_wire.py) -> typed values.

Prices and sizes arrive as decimal text at the instrument's precision ("64012.50") and become
the model's raw integers without touching a float (exact.py). Nothing here does I/O or keeps
stream state: `Decoder.decode` maps one message (a dict from `orjson.loads`) to one event and
raises one of `MALFORMED` on anything it cannot read; the stream layer decides what a bad
message means for its stream. Trades and book deltas, nearly all of a stream, take the
shortest path (see bench/bench_client.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeAlias

from quantsaas.client.errors import UnknownSymbol
from quantsaas.client.events import Candle, Greeks, GreekValues, Ofi, Vpin
from quantsaas.client.exact import Codec, size_of
from quantsaas.errors import quote
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
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
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
NS_PER_MS = 1_000_000
OPTION_CHANNELS = frozenset({"greeks", "options"})
"""Streams named by the option's underlying, while each message names the option itself."""


def _optional(read: Callable[[str], int], text: str | None) -> int | None:
    return None if text is None else read(text)


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
    """One entry of GET /api/v1/instruments (wire.py `instrument_json`) -> Instrument, an
    option's `OptionSpec` included."""
    price_scale, size_scale = _int(item["price_precision"]), _int(item["amount_precision"])
    option = item.get("option")
    spec = None
    if option is not None:
        if not isinstance(option, Mapping):
            raise TypeError(f"option: expected an object, got {quote(option)}")
        strike_text = _str(option["strike"])
        strike_scale = scale_of(strike_text)
        spec = OptionSpec(
            underlying=_str(option["underlying"]),
            expiry_ns=_int(option["expiry_ns"]),
            strike=parse_fixed(strike_text, strike_scale),
            strike_scale=strike_scale,
            kind=_str(option["kind"]),
        )
    return Instrument(
        venue=_str(item["venue"]),
        base=_str(item["base"]),
        quote=_str(item["quote"]),
        native_symbol=_str(item["native_symbol"]),
        price_scale=price_scale,
        size_scale=size_scale,
        tick_size=parse_fixed(_str(item["tick_size"]), price_scale),
        lot_size=parse_fixed(_str(item["lot_size"]), size_scale),
        option=spec,
    )


def listed_instruments(body: Any) -> list[Instrument]:
    """GET /api/v1/instruments -> its instruments, options included. An entry that is neither a
    BASE/QUOTE pair nor described as an option (a server older than the `option` field) is
    left out: its option tickers still name it (`option_instrument`)."""
    return [
        instrument_from_json(item)
        for item in body["data"]
        if item.get("option") is not None
        or item.get("symbol") == f"{item.get('base')}/{item.get('quote')}"
    ]


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


def trade(codec: Codec, message: JSON) -> Trade:
    data = message["data"]
    ts_event, ts_recv, trade_id = message["ts_event"], message["ts_recv"], data["id"]
    if type(ts_event) is not int or type(ts_recv) is not int or type(trade_id) is not str:
        raise TypeError("trade: timestamps must be integers and the id a string")
    price = codec.prices.get(data["price"])
    if price is None:
        price = codec.price(data["price"])
    size = size_of(data["amount"], codec.size_scale)
    side = _SIDES[data["side"]]
    return Trade(codec.instrument, price, size, side, trade_id, ts_event, ts_recv)


def _book(codec: Codec, message: JSON) -> tuple[Any, ...]:
    data = message["data"]
    ts_event, ts_recv, nonce = message["ts_event"], message["ts_recv"], data["nonce"]
    if type(ts_event) is not int or type(ts_recv) is not int or type(nonce) is not int:
        raise TypeError("book: timestamps and nonce must be integers")
    return codec.levels(data["bids"]), codec.levels(data["asks"]), nonce, ts_event, ts_recv


def snapshot(codec: Codec, message: JSON) -> BookSnapshot:
    bids, asks, nonce, ts_event, ts_recv = _book(codec, message)
    return BookSnapshot(codec.instrument, bids, asks, nonce, ts_event, ts_recv)


def delta(codec: Codec, message: JSON) -> BookDelta:
    """`_book` inline, for the commonest message of all (most change one side only)."""
    data = message["data"]
    ts_event, ts_recv, nonce = message["ts_event"], message["ts_recv"], data["nonce"]
    if type(ts_event) is not int or type(ts_recv) is not int or type(nonce) is not int:
        raise TypeError("book: timestamps and nonce must be integers")
    bids, asks = data["bids"], data["asks"]
    return BookDelta(
        codec.instrument,
        () if bids == [] else codec.levels(bids),
        () if asks == [] else codec.levels(asks),
        nonce,
        ts_event,
        ts_recv,
    )


def ticker(codec: Codec, message: JSON) -> Ticker:
    data = message["data"]
    price, size = codec.price, codec.size
    return Ticker(
        codec.instrument,
        price(data["bid"]),
        size(data["bidVolume"]),
        price(data["ask"]),
        size(data["askVolume"]),
        _optional(price, data.get("last")),
        _optional(size, data.get("baseVolume")),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def candle(codec: Codec, message: JSON) -> Candle:
    instrument = codec.instrument
    data = message["data"]
    price, size = codec.price, codec.size
    vwap = data.get("vwap")
    closed = data["closed"]
    if type(closed) is not bool:
        raise TypeError("candle: closed must be a boolean")
    return Candle(
        instrument,
        _str(data["interval"]),
        _int(data["start_ns"]),
        price(data["open"]),
        price(data["high"]),
        price(data["low"]),
        price(data["close"]),
        size(data["volume"]),
        size(data["buy_volume"]),
        None if vwap is None else Decimal(_str(vwap)),
        _int(data["trades"]),
        closed,
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def ofi(codec: Codec, message: JSON) -> Ofi:
    instrument = codec.instrument
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


def vpin(codec: Codec, message: JSON) -> Vpin:
    instrument = codec.instrument
    data = message["data"]
    return Vpin(
        instrument,
        _int(data["bucket"]),
        codec.size(data["bucket_volume"]),
        _int(data["window"]),
        _float(data["buy_volume"]),
        _float(data["sell_volume"]),
        _maybe_float(data.get("vpin")),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def option_ticker(codec: Codec, message: JSON) -> OptionTicker:
    instrument = codec.instrument
    data = message["data"]
    greeks = data["greeks"]
    return OptionTicker(
        instrument,
        codec.price(data["mark_price"]),
        _float(data["mark_iv"]),
        _maybe_float(data.get("bid_iv")),
        _maybe_float(data.get("ask_iv")),
        _optional(codec.price, data.get("best_bid_price")),
        _optional(codec.price, data.get("best_ask_price")),
        _float(data["underlying_price"]),
        _str(data["underlying_index"]),
        _float(data["index_price"]),
        _float(data["interest_rate"]),
        codec.size(data["open_interest"]),
        _float(greeks["delta"]),
        _float(greeks["gamma"]),
        _float(greeks["vega"]),
        _float(greeks["theta"]),
        _float(greeks["rho"]),
        _int(message["ts_event"]),
        _int(message["ts_recv"]),
    )


def greeks(codec: Codec, message: JSON) -> Greeks:
    instrument = codec.instrument
    ours = message["data"].get("ours")
    values = None
    if ours is not None:
        names = ("price", "delta", "gamma", "vega", "theta", "rho", "coin_delta")
        values = GreekValues(*(_maybe_float(ours.get(name)) for name in names))
    ticker_value = option_ticker(codec, message)
    return Greeks(instrument, ticker_value, values, ticker_value.ts_event, ticker_value.ts_recv)


Decode: TypeAlias = Callable[[Codec, JSON], Any]
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
        self._codecs: dict[tuple[str, str], Codec] = {}
        self._options: dict[tuple[str, str], Codec] = {}
        for instrument in instruments:
            self.add(instrument)

    def add(self, instrument: Instrument) -> None:
        self.instruments[instrument.key] = instrument
        self._codecs[instrument.key] = Codec(instrument)

    def knows(self, venue: str, symbol: str) -> bool:
        return (venue, symbol) in self.instruments

    def _option(self, message: JSON) -> Codec:
        """An option message's codec (its instrument built from the message, once)."""
        venue, symbol = message["venue"], message["symbol"]
        if message["channel"] not in OPTION_CHANNELS:
            raise UnknownSymbol(f"no instrument {quote(venue)} {quote(symbol)}")
        key = (venue, symbol)
        found = self._options.get(key)
        if found is None:
            found = self._options[key] = Codec(option_instrument(venue, message["data"]))
        return found

    def decode(self, message: JSON) -> Any:
        """One data message -> its typed event; None for a type the client does not decode."""
        kind = message["type"]
        codec = self._codecs.get((message["venue"], message["symbol"]))
        if codec is not None:  # the hot path: no table look-up for the commonest types
            if kind == "delta":
                return delta(codec, message)
            if kind == "trade":
                return trade(codec, message)
        decode = DECODERS.get(kind)
        if decode is None:
            return None
        return decode(self._option(message) if codec is None else codec, message)
