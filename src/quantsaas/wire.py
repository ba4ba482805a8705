"""Every wire shape in one place: the JSON of each event type, REST and stream alike.

`ENCODERS` is THE table: event type -> (message `type`, data encoder). Below the bus and the API
(it imports only value types), so the bus encodes a message once (`Envelope.text`), the Redis
bus ships that text, and the API routes reuse the same data shapes.

Field names follow ccxt's unified structures (`price`, `amount`, `side`, `bids`/`asks` as
`[price, amount]`, `timestamp` in ms, `datetime` ISO 8601) and prices and amounts are decimal
strings at the instrument's precision. Exact timestamps are also given as integer nanoseconds:
`ts_event` (venue time) and `ts_recv` (our receive time). Candle prices and volumes are exact
decimal strings; VWAP is a decimal string (exact sums, one Decimal division); OFI is given both
exactly (`ofi`, decimal strings per level) and depth-normalised (`ofi_normalised`, floats). VPIN,
IVs and greeks are floats; NaN becomes null. Consolidated levels and BBO sides name their venue.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import orjson

from quantsaas.analytics.candles import Candle
from quantsaas.analytics.events import OfiUpdate, OptionGreeks, VpinUpdate
from quantsaas.analytics.greeks import VenueGreeks
from quantsaas.book.consolidated import Bbo, ConsolidatedBook, TapeTrade, VenueLevel
from quantsaas.model import (
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    OptionSpec,
    OptionTicker,
    Stamped,
    Ticker,
    Trade,
    format_fixed,
    symbol_to_path,
)

JSON = dict[str, Any]
Topic = tuple[str, str, str]


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
        "option": None if instrument.option is None else option_json(instrument.option),
    }


def option_json(option: OptionSpec) -> JSON:
    """What makes a listed instrument an option (null for a pair): the same field names as its
    `options`/`greeks` data, with the exact expiry in ns beside the ms."""
    return {
        "underlying": option.underlying,
        "kind": option.kind,
        "strike": format_fixed(option.strike, option.strike_scale),
        "expiry": option.expiry_ns // 1_000_000,
        "expiry_ns": option.expiry_ns,
        "expiry_datetime": iso_from_ns(option.expiry_ns),
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


def number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def candle_data(candle: Candle) -> JSON:
    price, size = candle.instrument.format_price, candle.instrument.format_size
    return {
        "interval": candle.interval,
        "start": candle.start_ns // 1_000_000,
        "start_datetime": iso_from_ns(candle.start_ns),
        "start_ns": candle.start_ns,
        "open": price(candle.open),
        "high": price(candle.high),
        "low": price(candle.low),
        "close": price(candle.close),
        "volume": size(candle.volume),
        "buy_volume": size(candle.buy_volume),
        "vwap": decimal_text(candle.vwap),
        "trades": candle.trades,
        "closed": candle.closed,
    }


def ofi_data(update: OfiUpdate) -> JSON:
    bucket, size = update.bucket, update.instrument.format_size
    return {
        "start": bucket.start_ns // 1_000_000,
        "start_ns": bucket.start_ns,
        "width_ms": bucket.width_ns // 1_000_000,
        "levels": len(bucket.ofi),
        "ofi": [size(value) for value in bucket.ofi],
        "ofi_normalised": [number(value) for value in bucket.normalised],
        "mean_depth": format_fixed(round(bucket.mean_depth), update.instrument.size_scale),
        "events": bucket.events,
    }


def vpin_data(update: VpinUpdate) -> JSON:
    bucket, scale = update.bucket, 10**update.instrument.size_scale
    return {
        "bucket": bucket.index,
        "bucket_volume": update.instrument.format_size(update.bucket_volume),
        "window": update.window,
        "buy_volume": bucket.buy / scale,
        "sell_volume": bucket.sell / scale,
        "vpin": bucket.vpin,
        "classifier": "aggressor",
    }


def venue_greeks_json(greeks: VenueGreeks) -> JSON:
    return {
        name: number(float(getattr(greeks, name)))
        for name in ("price", "delta", "gamma", "vega", "theta", "rho", "coin_delta")
    }


def option_ticker_data(ticker: OptionTicker) -> JSON:
    instrument = ticker.instrument
    option = instrument.option
    price = instrument.format_price
    return {
        "instrument_name": instrument.symbol,
        "underlying": None if option is None else option.underlying,
        "kind": None if option is None else option.kind,
        "strike": None if option is None else format(option.strike_decimal, "f"),
        "expiry": None if option is None else option.expiry_ns // 1_000_000,
        "expiry_datetime": None if option is None else iso_from_ns(option.expiry_ns),
        "mark_price": price(ticker.mark_price),
        "best_bid_price": None if ticker.best_bid_price is None else price(ticker.best_bid_price),
        "best_ask_price": None if ticker.best_ask_price is None else price(ticker.best_ask_price),
        "mark_iv": ticker.mark_iv,
        "bid_iv": ticker.bid_iv,
        "ask_iv": ticker.ask_iv,
        "underlying_price": ticker.underlying_price,
        "underlying_index": ticker.underlying_index,
        "index_price": ticker.index_price,
        "interest_rate": ticker.interest_rate,
        "open_interest": instrument.format_size(ticker.open_interest),
        "greeks": {
            "delta": ticker.delta,
            "gamma": ticker.gamma,
            "vega": ticker.vega,
            "theta": ticker.theta,
            "rho": ticker.rho,
        },
    }


def option_greeks_data(greeks: OptionGreeks) -> JSON:
    return {**option_ticker_data(greeks.ticker), "ours": venue_greeks_json(greeks.ours)}


def _level(inst: Instrument, level: VenueLevel | None) -> list[str] | None:
    if level is None:
        return None
    return [inst.format_price(level.price), inst.format_size(level.size), level.venue]


def bbo_data(bbo: Bbo) -> JSON:
    inst = bbo.instrument
    spread = bbo.spread
    return {
        "bid": _level(inst, bbo.bid),
        "ask": _level(inst, bbo.ask),
        "bid_venue": None if bbo.bid is None else bbo.bid.venue,
        "ask_venue": None if bbo.ask is None else bbo.ask.venue,
        "spread": None if spread is None else inst.format_price(spread),
        "crossed": bbo.crossed,
        "locked": bbo.locked,
        "venues": list(bbo.venues),
    }


def consolidated_book_data(book: ConsolidatedBook) -> JSON:
    inst = book.instrument
    return {
        "bids": [_level(inst, level) for level in book.bids],
        "asks": [_level(inst, level) for level in book.asks],
        "venues": list(book.venues),
    }


def tape_data(tape: TapeTrade) -> JSON:
    inst = tape.instrument
    return {
        "id": tape.trade.trade_id,
        "venue": tape.venue,
        "price": inst.format_price(tape.price),
        "amount": inst.format_size(tape.size),
        "side": tape.trade.side.value,
        "timestamp": tape.ts_event // 1_000_000,
        "datetime": iso_from_ns(tape.ts_event),
    }


EventEncoder = Callable[[Any], JSON]
ENCODERS: dict[type, tuple[str, EventEncoder]] = {
    Trade: ("trade", trade_data),
    BookSnapshot: ("snapshot", book_data),
    BookDelta: ("delta", book_data),
    Ticker: ("ticker", ticker_data),
    Candle: ("candle", candle_data),
    OfiUpdate: ("ofi", ofi_data),
    VpinUpdate: ("vpin", vpin_data),
    OptionTicker: ("option_ticker", option_ticker_data),
    OptionGreeks: ("greeks", option_greeks_data),
    Bbo: ("bbo", bbo_data),
    ConsolidatedBook: ("consolidated_book", consolidated_book_data),
    TapeTrade: ("tape", tape_data),
}
"""Every event type that travels on the bus, with its message `type` and `data` shape."""


def event_message(channel: str, seq: int, event: Stamped) -> JSON:
    """The WebSocket message for one event: envelope fields plus `data`."""
    kind, data = ENCODERS[type(event)]
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


def event_text(channel: str, seq: int, event: Stamped) -> str:
    """The encoded message of one published event (the bus caches it per message)."""
    return encode(event_message(channel, seq, event))


def gap_message(topic: Topic, missed: int) -> JSON:
    channel, venue, symbol = topic
    return {
        "type": "gap",
        "channel": channel,
        "venue": venue,
        "symbol": symbol,
        "missed": missed,
    }
