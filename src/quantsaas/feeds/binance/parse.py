"""Pure parsers for Binance Spot market-data frames: raw text -> model events.

No I/O, no book state. Combined-stream frames (`{"stream": ..., "data": ...}`) and raw payloads
are both accepted. Prices and sizes go from the venue's decimal strings straight to integers.
Every price and size is checked here (`feeds.numbers`): a poisoned number makes the frame
malformed. Anything malformed raises `ProtocolError` naming the frame kind; a depth diff of a
known symbol raises `MalformedBook`, since that book has then missed an update.

Depth diffs, most of the traffic, take a typed path: msgspec decodes the frame straight into a
struct (ids and times checked as integers in range by the decoder, levels as text pairs), the
levels go through the cached `LevelCodec`.
Any frame that path does not accept whole is parsed again by the general path, which gives
the exact error, so both paths accept and refuse the same frames.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple, TypeAlias

import msgspec
import orjson

from quantsaas.errors import MalformedBook, ProtocolError, UnknownInstrument, describe, quote
from quantsaas.feeds.numbers import (
    MAX_MS,
    LevelCodec,
    checked_id,
    codec_for,
    fast_price,
    fast_size,
    ms_to_ns,
)
from quantsaas.model import (
    MAX_RAW,
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    Side,
    Ticker,
    Trade,
)


class DepthDiff(NamedTuple):
    """One `depthUpdate`: update ids `first_id` (U) .. `last_id` (u) and the changed levels."""

    first_id: int
    last_id: int
    delta: BookDelta


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """A REST `/api/v3/depth` response."""

    last_update_id: int
    snapshot: BookSnapshot


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """`serverShutdown`: the server will close soon; reconnect now."""

    ts_event: int


@dataclass(frozen=True, slots=True)
class Control:
    """A reply to a control request (`{"result": null, "id": 1}`) or an error reply."""

    payload: dict[str, Any]


Parsed: TypeAlias = DepthDiff | Trade | Ticker | ServerShutdown | Control
Instruments: TypeAlias = Mapping[str, Instrument]
"""Native symbol (`BTCUSDT`) -> instrument."""


def decode(raw: str | bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"binance: invalid JSON: {describe(exc)}") from None


def levels(instrument: Instrument, rows: Any) -> tuple[Level, ...]:
    ps, ss = instrument.price_scale, instrument.size_scale
    return tuple([(fast_price(p, ps), fast_size(q, ss)) for p, q in rows])


def _instrument(instruments: Instruments, payload: Mapping[str, Any]) -> Instrument:
    symbol = payload["s"]
    found = instruments.get(symbol)
    if found is None:
        raise UnknownInstrument(f"binance: frame for unsubscribed symbol {quote(symbol)}")
    return found


def _depth(payload: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> DepthDiff:
    instrument = _instrument(instruments, payload)
    try:
        last_id = checked_id(payload["u"])
        delta = BookDelta(
            instrument,
            levels(instrument, payload["b"]),
            levels(instrument, payload["a"]),
            last_id,
            ms_to_ns(payload["E"]),
            ts_recv,
        )
        return DepthDiff(checked_id(payload["U"]), last_id, delta)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        native = instrument.native_symbol
        text = f"binance: malformed depthUpdate of {native}: {describe(exc)}"
        raise MalformedBook(text, native) from None


def _trade(payload: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Trade:
    """`trade` and `aggTrade`: `m` true means the buyer was the maker, so the taker sold."""
    instrument = _instrument(instruments, payload)
    trade_id = payload["t"] if payload["e"] == "trade" else payload["a"]
    return Trade(
        instrument,
        fast_price(payload["p"], instrument.price_scale),
        fast_size(payload["q"], instrument.size_scale),
        Side.SELL if payload["m"] else Side.BUY,
        str(trade_id),
        ms_to_ns(payload["T"]),
        ts_recv,
    )


def _book_ticker(payload: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Ticker:
    """Spot bookTicker has no event time: `ts_event` is the receive time. A side's price may be
    zero (nothing quoted on it), never negative."""
    instrument = _instrument(instruments, payload)
    ps, ss = instrument.price_scale, instrument.size_scale
    return Ticker(
        instrument,
        fast_size(payload["b"], ps),
        fast_size(payload["B"], ss),
        fast_size(payload["a"], ps),
        fast_size(payload["A"], ss),
        None,
        None,
        ts_recv,
        ts_recv,
    )


def _shutdown(payload: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> ServerShutdown:
    return ServerShutdown(ms_to_ns(payload.get("E", 0)))


Handler: TypeAlias = Callable[[Mapping[str, Any], Instruments, int], Parsed]

HANDLERS: dict[str, Handler] = {
    "depthUpdate": _depth,
    "trade": _trade,
    "aggTrade": _trade,
    "serverShutdown": _shutdown,
}


def parse_message(message: Any, instruments: Instruments, ts_recv: int) -> Parsed | None:
    """A decoded frame -> one parsed item; None for event types we do not consume (kline, ...)."""
    if not isinstance(message, dict):
        raise ProtocolError(f"binance: expected a JSON object, got {type(message).__name__}")
    payload = message.get("data", message) if "stream" in message else message
    if not isinstance(payload, dict):
        raise ProtocolError("binance: combined-stream frame without an object in `data`")
    try:
        kind = payload.get("e")
        if kind is None:
            if "u" in payload and "b" in payload and "a" in payload:
                return _book_ticker(payload, instruments, ts_recv)
            if "id" in payload or "result" in payload or "code" in payload:
                return Control(payload)
            raise ProtocolError(
                f"binance: unrecognised frame with keys {quote(sorted(payload)[:8])}"
            )
        handler = HANDLERS.get(kind)
        return None if handler is None else handler(payload, instruments, ts_recv)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        kind = quote(payload.get("e", "frame"), 40)
        raise ProtocolError(f"binance: malformed {kind}: {describe(exc)}") from None


Id = Annotated[int, msgspec.Meta(ge=0, le=MAX_RAW)]
Ms = Annotated[int, msgspec.Meta(ge=0, le=MAX_MS)]


class _Depth(msgspec.Struct, gc=False):
    e: str
    E: Ms
    s: str
    U: Id
    u: Id
    b: list[tuple[str, str]]
    a: list[tuple[str, str]]


class _Combined(msgspec.Struct, gc=False):
    stream: str
    data: _Depth


_COMBINED_DEPTH = msgspec.json.Decoder(_Combined)
_RAW_DEPTH = msgspec.json.Decoder(_Depth)
MS = 1_000_000


def _typed_depth(
    raw: str | bytes, instruments: Instruments, ts_recv: int, combined: bool = True
) -> DepthDiff | None:
    """A depth diff through the typed path; None when it is not one it accepts whole."""
    try:
        depth = _COMBINED_DEPTH.decode(raw).data if combined else _RAW_DEPTH.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    inst = instruments.get(depth.s)
    if inst is None or depth.e != "depthUpdate":
        return None
    codec = _CODECS.get(inst.price_scale * 64 + inst.size_scale)
    if codec is None:
        codec = _CODECS[inst.price_scale * 64 + inst.size_scale] = codec_for(
            inst.price_scale, inst.size_scale
        )
    prices, sizes = codec.prices, codec.sizes
    bids: list[Level] = []
    asks: list[Level] = []
    try:  # loops, not comprehensions: cheaper for the 1-5 levels of a diff
        for p, q in depth.b:
            bids.append((prices[p], sizes[q]))
        for p, q in depth.a:
            asks.append((prices[p], sizes[q]))
    except ValueError:
        return None
    delta = BookDelta(inst, tuple(bids), tuple(asks), depth.u, depth.E * MS, ts_recv)
    return _new_diff(DepthDiff, (depth.U, depth.u, delta))


_new_diff = tuple.__new__
_CODECS: dict[int, LevelCodec] = {}
"""price_scale * 64 + size_scale -> its codec (a dict lookup instead of a call per frame)."""


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Parsed | None:
    # `{"stream":"x@depth...","data":{"e":"depthUpdate"` or `{"e":"depthUpdate"`
    at = (
        raw.find(b"depthUpdate", 0, 120)
        if isinstance(raw, bytes)
        else raw.find("depthUpdate", 0, 120)
    )
    if at >= 0:  # after `{"stream":"...",` (compact, as venues send it): combined
        diff = _typed_depth(raw, instruments, ts_recv, at > 20)
        if diff is not None:
            return diff
    return parse_message(decode(raw), instruments, ts_recv)


def parse_depth_snapshot(raw: str | bytes, instrument: Instrument, ts_recv: int) -> DepthSnapshot:
    """A REST depth response for `instrument`; Binance gives it no timestamp (ts_event=ts_recv)."""
    body = decode(raw)
    try:
        last_id = checked_id(body["lastUpdateId"])
        snapshot = BookSnapshot(
            instrument,
            tuple(sorted(levels(instrument, body["bids"]), reverse=True)),
            tuple(sorted(levels(instrument, body["asks"]))),
            last_id,
            ts_recv,
            ts_recv,
        )
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ProtocolError(f"binance: malformed depth snapshot: {describe(exc)}") from None
    return DepthSnapshot(last_id, snapshot)
