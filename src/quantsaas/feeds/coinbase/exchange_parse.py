"""Pure parsers for the Coinbase Exchange feed (`ws-feed`): raw text -> model events.

Channels: `level2_batch` (`snapshot`, `l2update`), `matches` (`last_match`, `match`), `ticker`,
`heartbeat`, plus `subscriptions` acks and `error` replies. `match.side` is the maker's side, so
the aggressor is the opposite. Level-2 frames carry no sequence number; `sequence` (per product)
is on ticker, match and heartbeat frames. Every price and size is checked here
(`feeds.numbers`); a bad level of a known product raises `MalformedBook`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import msgspec
import orjson

from quantsaas.errors import (
    QUOTE_LIMIT,
    MalformedBook,
    ProtocolError,
    UnknownInstrument,
    VenueError,
    clip,
    describe,
    quote,
)
from quantsaas.feeds.numbers import checked_id, codec_for, fast_price, fast_size, iso_ns
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level, Side, Ticker, Trade

Instruments: TypeAlias = Mapping[str, Instrument]
"""Product id (`BTC-USD`) -> instrument."""


class Sequenced(msgspec.Struct, frozen=True, gc=False):
    """A parsed event with the product's `sequence` (None for level-2 frames); a struct, like
    the events: one is made per frame."""

    product: str
    sequence: int | None
    event: BookSnapshot | BookDelta | Trade | Ticker | None


class Ack(msgspec.Struct, frozen=True, gc=False):
    """`subscriptions` acknowledgement."""

    channels: tuple[str, ...]


class VenueRefused(VenueError):
    """An `error` frame from the venue (e.g. `Failed to subscribe`)."""


Parsed: TypeAlias = Sequenced | Ack

MAKER_TO_AGGRESSOR = {"buy": Side.SELL, "sell": Side.BUY}
TAKER_SIDE = {"buy": Side.BUY, "sell": Side.SELL}


time_ns = iso_ns
"""ISO 8601 with `Z` and up to 9 decimals -> integer ns (no float, no datetime)."""


def _update_time(value: Any, ts_recv: int) -> int:
    """An l2update's time; real captures hold `0001-01-01T00:00:00.000000Z` now and then (the
    levels are fine): a time before 1970 is taken as unknown, the receive time."""
    if isinstance(value, str) and value[:4] < "1970" and value[:4].isdigit():
        return ts_recv
    return iso_ns(value)


def _levels(instrument: Instrument, rows: Any) -> list[Level]:
    codec = codec_for(instrument.price_scale, instrument.size_scale)
    prices, sizes = codec.prices, codec.sizes
    return [(prices[row[0]], sizes[row[1]]) for row in rows]


def _instrument(instruments: Instruments, product: str) -> Instrument:
    found = instruments.get(product)
    if found is None:
        raise UnknownInstrument(f"coinbase: frame for unsubscribed product {quote(product)}")
    return found


def _snapshot(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    try:
        bids = tuple(sorted(_levels(inst, msg["bids"]), reverse=True))
        asks = tuple(sorted(_levels(inst, msg["asks"])))
        ts = time_ns(msg["time"]) if "time" in msg else ts_recv
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _bad_book("snapshot", product, exc) from None
    return Sequenced(product, None, BookSnapshot(inst, bids, asks, 0, ts, ts_recv))


def _bad_book(kind: str, product: str, exc: Exception) -> MalformedBook:
    return MalformedBook(f"coinbase: malformed {kind} of {product}: {describe(exc)}", product)


def _l2update(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    bids: list[Level] = []
    asks: list[Level] = []
    codec = codec_for(inst.price_scale, inst.size_scale)
    prices, sizes = codec.prices, codec.sizes
    try:
        for side, price, size in msg["changes"]:
            target = bids if side == "buy" else asks if side == "sell" else None
            if target is None:
                raise ValueError(f"l2update side {quote(side, 20)}")
            target.append((prices[price], sizes[size]))
        ts = _update_time(msg["time"], ts_recv)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise _bad_book("l2update", product, exc) from None
    return Sequenced(product, None, BookDelta(inst, tuple(bids), tuple(asks), 0, ts, ts_recv))


def _match(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    trade = Trade(
        inst,
        fast_price(msg["price"], inst.price_scale),
        fast_size(msg["size"], inst.size_scale),
        MAKER_TO_AGGRESSOR[msg["side"]],
        str(msg["trade_id"]),
        time_ns(msg["time"]),
        ts_recv,
    )
    return Sequenced(product, checked_id(msg["sequence"]), trade)


def _ticker(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    product = msg["product_id"]
    inst = _instrument(instruments, product)
    ps, ss = inst.price_scale, inst.size_scale  # a ticker side may be quoted at 0: empty
    ticker = Ticker(
        inst,
        fast_size(msg["best_bid"], ps),
        fast_size(msg.get("best_bid_size") or "0", ss),
        fast_size(msg["best_ask"], ps),
        fast_size(msg.get("best_ask_size") or "0", ss),
        fast_price(msg["price"], ps),
        fast_size(msg["volume_24h"], ss) if "volume_24h" in msg else None,
        time_ns(msg["time"]) if "time" in msg else ts_recv,
        ts_recv,
    )
    return Sequenced(product, checked_id(msg["sequence"]), ticker)


def _heartbeat(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    return Sequenced(msg["product_id"], checked_id(msg["sequence"]), None)


def _subscriptions(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    names = tuple(ch["name"] if isinstance(ch, dict) else str(ch) for ch in msg["channels"])
    return Ack(names)


def _error(msg: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> Parsed:
    reason = msg.get("reason")
    said = clip(str(msg.get("message")), QUOTE_LIMIT)
    text = f"coinbase: {said}" + (f": {clip(str(reason), QUOTE_LIMIT)}" if reason else "")
    raise VenueRefused(text)


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
    kind = msg.get("type", "")
    handler = HANDLERS.get(kind) if isinstance(kind, str) else None
    if handler is None:
        return None
    try:
        return handler(msg, instruments, ts_recv)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ProtocolError(f"coinbase: malformed {quote(kind, 40)}: {describe(exc)}") from None


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Parsed | None:
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"coinbase: invalid JSON: {describe(exc)}") from None
    return parse_message(msg, instruments, ts_recv)
