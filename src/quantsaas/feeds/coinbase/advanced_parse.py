"""Pure parsers for the Coinbase Advanced Trade market-data feed: raw text -> model events.

Every frame is an envelope `{"channel", "timestamp", "sequence_num", "events": [...]}`; level2
arrives on channel `l2_data` with sides `bid`/`offer`. `market_trades` snapshots (recent history
sent on subscribe) are skipped so a reconnect does not repeat trades. Its `side` is taken as the
maker's side, as NautilusTrader does (unverified against live data), so the aggressor is opposite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from quantsaas.errors import ProtocolError, UnknownInstrument
from quantsaas.feeds.coinbase.exchange_parse import VenueRefused, time_ns
from quantsaas.feeds.instruments import fast_fixed
from quantsaas.model import (
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


@dataclass(frozen=True, slots=True)
class Envelope:
    channel: str
    sequence_num: int
    events: tuple[Item, ...]


def _instrument(instruments: Instruments, product: str) -> Instrument:
    found = instruments.get(product)
    if found is None:
        raise UnknownInstrument(f"coinbase: frame for unsubscribed product {product!r}")
    return found


def _l2(events: list[Any], instruments: Instruments, ts: int, ts_recv: int) -> list[Item]:
    out: list[Item] = []
    for event in events:
        product = event["product_id"]
        inst = _instrument(instruments, product)
        bids: list[Level] = []
        asks: list[Level] = []
        ps, ss = inst.price_scale, inst.size_scale
        for row in event["updates"]:
            side = row["side"]
            target = bids if side == "bid" else asks if side == "offer" else None
            if target is None:
                raise ProtocolError(f"coinbase: level2 side {side!r}")
            target.append((fast_fixed(row["price_level"], ps), fast_fixed(row["new_quantity"], ss)))
        if event["type"] == "snapshot":
            book: MarketEvent = BookSnapshot(
                inst, tuple(sorted(bids, reverse=True)), tuple(sorted(asks)), 0, ts, ts_recv
            )
        else:
            book = BookDelta(inst, tuple(bids), tuple(asks), 0, ts, ts_recv)
        out.append((product, book))
    return out


def _trades(events: list[Any], instruments: Instruments, ts: int, ts_recv: int) -> list[Item]:
    out: list[Item] = []
    for event in events:
        if event.get("type") == "snapshot":
            continue
        for row in event["trades"]:
            product = row["product_id"]
            inst = _instrument(instruments, product)
            trade = Trade(
                inst,
                inst.price(row["price"]),
                inst.size(row["size"]),
                MAKER_TO_AGGRESSOR[row["side"]],
                str(row["trade_id"]),
                time_ns(row["time"]) if "time" in row else ts,
                ts_recv,
            )
            out.append((product, trade))
    return out


def _tickers(events: list[Any], instruments: Instruments, ts: int, ts_recv: int) -> list[Item]:
    out: list[Item] = []
    for event in events:
        for row in event["tickers"]:
            product = row["product_id"]
            inst = _instrument(instruments, product)
            if "best_bid" not in row or "best_ask" not in row:
                continue  # older frames had no top of book
            ticker = Ticker(
                inst,
                inst.price(row["best_bid"]),
                inst.size(row.get("best_bid_quantity") or "0"),
                inst.price(row["best_ask"]),
                inst.size(row.get("best_ask_quantity") or "0"),
                inst.price(row["price"]),
                inst.size(row["volume_24_h"]) if "volume_24_h" in row else None,
                ts,
                ts_recv,
            )
            out.append((product, ticker))
    return out


def _nothing(events: list[Any], instruments: Instruments, ts: int, ts_recv: int) -> list[Item]:
    return []


Handler: TypeAlias = Callable[[list[Any], Instruments, int, int], list[Item]]

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
        raise VenueRefused(f"coinbase: {msg.get('message')}")
    try:
        channel = msg["channel"]
        sequence = int(msg["sequence_num"])
        ts = time_ns(msg["timestamp"]) if "timestamp" in msg else ts_recv
        handler = HANDLERS.get(channel, _nothing)
        return Envelope(channel, sequence, tuple(handler(msg["events"], instruments, ts, ts_recv)))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"coinbase: malformed {msg.get('channel')} frame: {exc!r}") from None


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Envelope:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"coinbase: invalid JSON: {exc}") from None
    return parse_message(msg, instruments, ts_recv)
