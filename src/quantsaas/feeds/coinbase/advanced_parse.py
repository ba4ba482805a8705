"""Pure parsers for the Coinbase Advanced Trade market-data feed: raw text -> model events.

Every frame is an envelope `{"channel", "timestamp", "sequence_num", "events": [...]}`; level2
arrives on channel `l2_data` with sides `bid`/`offer`. `market_trades` snapshots (recent history
sent on subscribe) are skipped so a reconnect does not repeat trades. Its `side` is taken as the
maker's side, as NautilusTrader does (unverified against live data), so the aggressor is opposite.
Every price and size is checked here (`feeds.numbers`); a bad level of a known product raises
`MalformedBook`. A book event's `sequence` is the `sequence_num` of the frame that carried it:
increasing per product, not contiguous (like Binance's `u`), and it names the venue's frame.
`l2_data` frames, most of the traffic, take a typed path (msgspec structs checked by the decoder,
the cached `LevelCodec`); a frame it does not accept whole is parsed again by the general path,
which gives the exact error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, NamedTuple, TypeAlias

import msgspec
import orjson

from quantsaas.errors import (
    QUOTE_LIMIT,
    MalformedBook,
    ProtocolError,
    UnknownInstrument,
    clip,
    describe,
    quote,
)
from quantsaas.feeds.coinbase.exchange_parse import VenueRefused, time_ns
from quantsaas.feeds.numbers import FixedCache, checked_id, codec_for, fast_price, fast_size
from quantsaas.model import (
    MAX_RAW,
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    MarketEvent,
    Side,
    Ticker,
    Trade,
)

Instruments: TypeAlias = Mapping[str, Instrument]
Item: TypeAlias = tuple[str, MarketEvent | None]

MAKER_TO_AGGRESSOR = {"BUY": Side.SELL, "SELL": Side.BUY}


class Envelope(NamedTuple):
    channel: str
    sequence_num: int
    events: tuple[Item, ...]


class _Update(msgspec.Struct, gc=False):
    side: Literal["bid", "offer"]
    price_level: str
    new_quantity: str


class _L2Event(msgspec.Struct, gc=False):
    type: Literal["snapshot", "update"]
    product_id: str
    updates: list[_Update]


class _L2Frame(msgspec.Struct, gc=False):
    channel: Literal["l2_data"]
    sequence_num: Annotated[int, msgspec.Meta(ge=0, le=MAX_RAW)]
    events: list[_L2Event]
    timestamp: str | msgspec.UnsetType = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    """Present only on `error` frames: those take the general path."""


_L2_FRAME = msgspec.json.Decoder(_L2Frame)
_new_envelope = tuple.__new__
_UNSET = msgspec.UNSET


_CODECS: dict[str, tuple[Instrument, FixedCache, FixedCache]] = {}
"""Product -> its instrument and number tables: one lookup per event, checked by identity
against the instrument the caller passed (a product may be re-listed with other scales)."""


def _remember_codec(product: str, inst: Instrument) -> tuple[Instrument, FixedCache, FixedCache]:
    if len(_CODECS) >= 1_000:
        _CODECS.clear()
    codec = codec_for(inst.price_scale, inst.size_scale)
    known = _CODECS[product] = (inst, codec.prices, codec.sizes)
    return known


_L2_HEAD = '{"channel":"l2_data",'
"""How the venue starts every `l2_data` frame: the typed path is tried on these only."""
_L2_HEAD_BYTES = _L2_HEAD.encode()


def typed_l2(
    raw: str | bytes, instruments: Instruments, ts_recv: int
) -> tuple[int, list[MarketEvent]] | None:
    """An `l2_data` frame through the typed path: its `sequence_num` and book events; None when
    the frame does not start as the venue starts them or the path does not accept it whole
    (the general path, `parse_frame`, then gives the result or the exact error).

    The decoder checks the channel, event types, sides and sequence number; what is left here
    is the time (`iso_ns`), one cached conversion per number and the events."""
    if isinstance(raw, bytes):
        if not raw.startswith(_L2_HEAD_BYTES):
            return None
    elif not raw.startswith(_L2_HEAD):
        return None
    try:
        frame = _L2_FRAME.decode(raw)
        stamp = frame.timestamp
        ts = ts_recv if stamp is _UNSET else time_ns(stamp)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None
    if frame.type is not _UNSET:
        return None
    seq = frame.sequence_num
    out: list[MarketEvent] = []
    for event in frame.events:
        product = event.product_id
        inst = instruments.get(product)
        known = _CODECS.get(product)
        if known is None or known[0] is not inst:
            if inst is None:
                return None
            known = _remember_codec(product, inst)
        prices, sizes = known[1], known[2]
        bids: list[Level] = []
        asks: list[Level] = []
        try:
            for row in event.updates:
                (bids if row.side == "bid" else asks).append(
                    (prices[row.price_level], sizes[row.new_quantity])
                )
        except ValueError:
            return None
        if event.type == "update":
            out.append(BookDelta(inst, tuple(bids), tuple(asks), seq, ts, ts_recv))
        else:
            bids.sort(reverse=True)
            asks.sort()
            out.append(BookSnapshot(inst, tuple(bids), tuple(asks), seq, ts, ts_recv))
    return seq, out


def _instrument(instruments: Instruments, product: str) -> Instrument:
    found = instruments.get(product)
    if found is None:
        raise UnknownInstrument(f"coinbase: frame for unsubscribed product {quote(product)}")
    return found


def _l2(events: list[Any], instruments: Instruments, seq: int, ts: int, ts_recv: int) -> list[Item]:
    out: list[Item] = []
    for event in events:
        product = event["product_id"]
        inst = _instrument(instruments, product)
        bids: list[Level] = []
        asks: list[Level] = []
        ps, ss = inst.price_scale, inst.size_scale
        try:
            for row in event["updates"]:
                side = row["side"]
                target = bids if side == "bid" else asks if side == "offer" else None
                if target is None:
                    raise ValueError(f"level2 side {quote(side, 20)}")
                target.append(
                    (fast_price(row["price_level"], ps), fast_size(row["new_quantity"], ss))
                )
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            text = f"coinbase: malformed level2 of {product}: {describe(exc)}"
            raise MalformedBook(text, product) from None
        if event["type"] == "snapshot":
            book: MarketEvent = BookSnapshot(
                inst, tuple(sorted(bids, reverse=True)), tuple(sorted(asks)), seq, ts, ts_recv
            )
        else:
            book = BookDelta(inst, tuple(bids), tuple(asks), seq, ts, ts_recv)
        out.append((product, book))
    return out


def _trades(
    events: list[Any], instruments: Instruments, seq: int, ts: int, ts_recv: int
) -> list[Item]:
    out: list[Item] = []
    for event in events:
        if event.get("type") == "snapshot":
            continue
        for row in event["trades"]:
            product = row["product_id"]
            inst = _instrument(instruments, product)
            trade = Trade(
                inst,
                fast_price(row["price"], inst.price_scale),
                fast_size(row["size"], inst.size_scale),
                MAKER_TO_AGGRESSOR[row["side"]],
                str(row["trade_id"]),
                time_ns(row["time"]) if "time" in row else ts,
                ts_recv,
            )
            out.append((product, trade))
    return out


def _tickers(
    events: list[Any], instruments: Instruments, seq: int, ts: int, ts_recv: int
) -> list[Item]:
    out: list[Item] = []
    for event in events:
        for row in event["tickers"]:
            product = row["product_id"]
            inst = _instrument(instruments, product)
            if "best_bid" not in row or "best_ask" not in row:
                continue  # older frames had no top of book
            ps, ss = inst.price_scale, inst.size_scale  # a side may be quoted at 0: empty
            ticker = Ticker(
                inst,
                fast_size(row["best_bid"], ps),
                fast_size(row.get("best_bid_quantity") or "0", ss),
                fast_size(row["best_ask"], ps),
                fast_size(row.get("best_ask_quantity") or "0", ss),
                fast_price(row["price"], ps),
                fast_size(row["volume_24_h"], ss) if "volume_24_h" in row else None,
                ts,
                ts_recv,
            )
            out.append((product, ticker))
    return out


def _nothing(
    events: list[Any], instruments: Instruments, seq: int, ts: int, ts_recv: int
) -> list[Item]:
    return []


Handler: TypeAlias = Callable[[list[Any], Instruments, int, int, int], list[Item]]

HANDLERS: dict[str, Handler] = {
    "l2_data": _l2,
    "market_trades": _trades,
    "ticker": _tickers,
    "heartbeats": _nothing,
    "subscriptions": _nothing,
}


def parse_message(msg: Any, instruments: Instruments, ts_recv: int) -> Envelope:
    if not isinstance(msg, dict):
        raise ProtocolError(f"coinbase: expected a JSON object, got {type(msg).__name__}")
    if msg.get("type") == "error":
        raise VenueRefused(f"coinbase: {clip(str(msg.get('message')), QUOTE_LIMIT)}")
    try:
        channel = msg["channel"]
        sequence = checked_id(msg["sequence_num"])
        ts = time_ns(msg["timestamp"]) if "timestamp" in msg else ts_recv
        handler = HANDLERS.get(channel, _nothing)
        events = handler(msg["events"], instruments, sequence, ts, ts_recv)
        return Envelope(channel, sequence, tuple(events))
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        kind = quote(msg.get("channel"), 40)
        raise ProtocolError(f"coinbase: malformed {kind} frame: {describe(exc)}") from None


class _Numbered(msgspec.Struct):
    sequence_num: Annotated[int, msgspec.Meta(ge=0, le=MAX_RAW)]


_NUMBERED = msgspec.json.Decoder(_Numbered)


def envelope_sequence(raw: str | bytes) -> int | None:
    """The `sequence_num` of a frame whose content was refused; None if it has none readable."""
    try:
        return _NUMBERED.decode(raw).sequence_num
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def parse_general(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Envelope:
    """Any frame through the general path (orjson, then the channel's handler)."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"coinbase: invalid JSON: {describe(exc)}") from None
    return parse_message(msg, instruments, ts_recv)


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Envelope:
    """Any frame: `l2_data` through the typed path where it accepts it, else the general one."""
    typed = typed_l2(raw, instruments, ts_recv)
    if typed is None:
        return parse_general(raw, instruments, ts_recv)
    seq, events = typed
    items = tuple((event.instrument.native_symbol, event) for event in events)
    return _new_envelope(Envelope, ("l2_data", seq, items))
