"""Pure parsers for the Coinbase Exchange feed (`ws-feed`): raw text -> model events.

Channels: `level2_batch` (`snapshot`, `l2update`), `matches` (`last_match`, `match`), `ticker`,
`heartbeat`, plus `subscriptions` acks and `error` replies. `match.side` is the maker's side, so
the aggressor is the opposite. Level-2 frames carry no sequence number; `sequence` (per product)
is on ticker, match and heartbeat frames.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import orjson

from quantsaas.errors import ProtocolError, UnknownInstrument, VenueError
from quantsaas.feeds.instruments import fast_fixed
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level, Side, Ticker, Trade

Instruments: TypeAlias = Mapping[str, Instrument]
"""Product id (`BTC-USD`) -> instrument."""


@dataclass(frozen=True, slots=True)
class Sequenced:
    """A parsed event with the product's `sequence` (None for level-2 frames)."""

    product: str
    sequence: int | None
    event: BookSnapshot | BookDelta | Trade | Ticker | None


@dataclass(frozen=True, slots=True)
class Ack:
    """`subscriptions` acknowledgement."""

    channels: tuple[str, ...]


class VenueRefused(VenueError):
    """An `error` frame from the venue (e.g. `Failed to subscribe`)."""


Parsed: TypeAlias = Sequenced | Ack

MAKER_TO_AGGRESSOR = {"buy": Side.SELL, "sell": Side.BUY}
TAKER_SIDE = {"buy": Side.BUY, "sell": Side.SELL}


@functools.lru_cache(maxsize=1024)
def _epoch_seconds(head: str) -> int:
    """`2021-04-17T16:43:37` (UTC) -> Unix seconds; cached, frames share their second."""
    return int(datetime.fromisoformat(head + "+00:00").timestamp())


def time_ns(text: str) -> int:
    """ISO 8601 with `Z` and up to 9 decimals -> integer ns (no float)."""
    head, _, frac = text.rstrip("Z").partition(".")
    if frac and not (frac.isdigit() and frac.isascii()):
        raise ValueError(f"bad fraction of a second in {text!r}")
    return _epoch_seconds(head) * 1_000_000_000 + int((frac + "000000000")[:9])


def _levels(instrument: Instrument, rows: Any) -> list[Level]:
    ps, ss = instrument.price_scale, instrument.size_scale
    return [(fast_fixed(row[0], ps), fast_fixed(row[1], ss)) for row in rows]


def _instrument(instruments: Instruments, product: str) -> Instrument:
    found = instruments.get(product)
    if found is None:
        raise UnknownInstrument(f"coinbase: frame for unsubscribed product {product!r}")
    return found


def _snapshot(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    bids = tuple(sorted(_levels(inst, msg["bids"]), reverse=True))
    asks = tuple(sorted(_levels(inst, msg["asks"])))
    ts = time_ns(msg["time"]) if "time" in msg else ts_recv
    return Sequenced(product, None, BookSnapshot(inst, bids, asks, 0, ts, ts_recv))


def _l2update(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    bids: list[Level] = []
    asks: list[Level] = []
    ps, ss = inst.price_scale, inst.size_scale
    for side, price, size in msg["changes"]:
        target = bids if side == "buy" else asks if side == "sell" else None
        if target is None:
            raise ProtocolError(f"coinbase: l2update side {side!r}")
        target.append((fast_fixed(price, ps), fast_fixed(size, ss)))
    delta = BookDelta(inst, tuple(bids), tuple(asks), 0, time_ns(msg["time"]), ts_recv)
    return Sequenced(product, None, delta)


def _match(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    trade = Trade(
        inst,
        inst.price(msg["price"]),
        inst.size(msg["size"]),
        MAKER_TO_AGGRESSOR[msg["side"]],
        str(msg["trade_id"]),
        time_ns(msg["time"]),
        ts_recv,
    )
    return Sequenced(product, int(msg["sequence"]), trade)


def _ticker(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    price, size = inst.price, inst.size
    ticker = Ticker(
        inst,
        price(msg["best_bid"]),
        size(msg.get("best_bid_size") or "0"),
        price(msg["best_ask"]),
        size(msg.get("best_ask_size") or "0"),
        price(msg["price"]),
        size(msg["volume_24h"]) if "volume_24h" in msg else None,
        time_ns(msg["time"]) if "time" in msg else ts_recv,
        ts_recv,
    )
    return Sequenced(product, int(msg["sequence"]), ticker)


def _heartbeat(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    return Sequenced(msg["product_id"], int(msg["sequence"]), None)


def _subscriptions(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    names = tuple(ch["name"] if isinstance(ch, dict) else str(ch) for ch in msg["channels"])
    return Ack(names)


def _error(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    reason = msg.get("reason")
    raise VenueRefused(f"coinbase: {msg.get('message')}" + (f": {reason}" if reason else ""))


Handler: TypeAlias = Callable[[Mapping[str, Any], Instruments, int], Parsed]

HANDLERS: dict[str, Handler] = {
    "snapshot": _snapshot,
    "l2update": _l2update,
    "match": _match,
    "last_match": _match,
    "ticker": _ticker,
    "heartbeat": _heartbeat,
    "subscriptions": _subscriptions,
    "error": _error,
}


def parse_message(msg: Any, instruments: Instruments, ts_recv: int) -> Parsed | None:
    """A decoded frame -> parsed item; None for types we do not consume."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"coinbase: expected a JSON object, got {type(msg).__name__}")
    handler = HANDLERS.get(msg.get("type", ""))
    if handler is None:
        return None
    try:
        return handler(msg, instruments, ts_recv)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"coinbase: malformed {msg.get('type')}: {exc!r}") from None


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Parsed | None:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"coinbase: invalid JSON: {exc}") from None
    return parse_message(msg, instruments, ts_recv)
