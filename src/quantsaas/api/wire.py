"""JSON shapes of market data, shared by REST and the WebSocket stream.

Field names follow ccxt's unified structures (`price`, `amount`, `side`, `bids`/`asks` as
`[price, amount]`, `timestamp` in ms, `datetime` ISO 8601) and prices and amounts are decimal
strings at the instrument's precision. Exact timestamps are also given as integer nanoseconds:
`ts_event` (venue time) and `ts_recv` (our receive time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from quantsaas.bus import Envelope, Gap
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    Stamped,
    Ticker,
    Trade,
    symbol_to_path,
)

JSON = dict[str, Any]


def iso_from_ns(ts_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ts_ns // 1_000_000 / 1000, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def levels_json(instrument: Instrument, levels: Iterable[Level]) -> list[list[str]]:
    price, size = instrument.format_price, instrument.format_size
    return [[price(p), size(s)] for p, s in levels]


def instrument_json(instrument: Instrument) -> JSON:
    return {
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "path_symbol": symbol_to_path(instrument.symbol),
        "base": instrument.base,
        "quote": instrument.quote,
        "native_symbol": instrument.native_symbol,
        "tick_size": instrument.format_price(instrument.tick_size),
        "lot_size": instrument.format_size(instrument.lot_size),
        "price_precision": instrument.price_scale,
        "amount_precision": instrument.size_scale,
    }


def _stamps(ts_event: int, ts_recv: int) -> JSON:
    return {
        "timestamp": ts_event // 1_000_000,
        "datetime": iso_from_ns(ts_event),
        "ts_event": ts_event,
        "ts_recv": ts_recv,
    }


def trade_data(trade: Trade) -> JSON:
    instrument = trade.instrument
    return {
        "id": trade.trade_id,
        "price": instrument.format_price(trade.price),
        "amount": instrument.format_size(trade.size),
        "side": trade.side.value,
        **_stamps(trade.ts_event, trade.ts_recv),
    }


def book_data(book: BookSnapshot | BookDelta) -> JSON:
    instrument = book.instrument
    return {
        "bids": levels_json(instrument, book.bids),
        "asks": levels_json(instrument, book.asks),
        "nonce": book.sequence,
    }


def ticker_data(ticker: Ticker) -> JSON:
    instrument = ticker.instrument
    price, size = instrument.format_price, instrument.format_size
    return {
        "bid": price(ticker.bid),
        "bidVolume": size(ticker.bid_size),
        "ask": price(ticker.ask),
        "askVolume": size(ticker.ask_size),
        "last": None if ticker.last is None else price(ticker.last),
        "baseVolume": None if ticker.volume_24h is None else size(ticker.volume_24h),
    }


EventEncoder = Callable[[Any], JSON]
_ENCODERS: dict[type, tuple[str, EventEncoder]] = {
    Trade: ("trade", trade_data),
    BookSnapshot: ("snapshot", book_data),
    BookDelta: ("delta", book_data),
    Ticker: ("ticker", ticker_data),
}


def register_encoder(event_type: type, kind: str, data: EventEncoder) -> None:
    """Teach the stream a new event type (derived data): its message `type` and `data` shape."""
    _ENCODERS[event_type] = (kind, data)


def event_message(channel: str, seq: int, event: Stamped) -> JSON:
    """The WebSocket message for one event: envelope fields plus `data`."""
    kind, data = _ENCODERS[type(event)]
    instrument = event.instrument
    return {
        "type": kind,
        "channel": channel,
        "venue": instrument.venue,
        "symbol": instrument.symbol,
        "seq": seq,
        **_stamps(event.ts_event, event.ts_recv),
        "data": data(event),
    }


def encode(message: JSON) -> str:
    return orjson.dumps(message).decode()


def encode_envelope(envelope: Envelope) -> str:
    """Encoded once per published message, then shared by every client."""
    wire = envelope.wire
    if wire is None:
        channel, _, _ = envelope.topic
        wire = envelope.wire = encode(event_message(channel, envelope.seq, envelope.event))
    return wire


def gap_message(gap: Gap) -> JSON:
    channel, venue, symbol = gap.topic
    return {
        "type": "gap",
        "channel": channel,
        "venue": venue,
        "symbol": symbol,
        "missed": gap.missed,
    }
