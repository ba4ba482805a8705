"""Pure parsers for Deribit's public JSON-RPC frames: raw text -> parsed items.

No I/O, no book state. Deribit sends prices and amounts as JSON numbers: frames are decoded with
`parse_float=str`, so each number reaches the fixed-point parser as the venue's own text, never
through a float. Option instruments are built from their names (`option_names`, the one parser
of Deribit names). Every price and amount is checked here (`feeds.numbers`), and the float
analytics fields must be finite; a bad level of a known instrument raises `MalformedBook`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from quantsaas import option_names
from quantsaas.errors import (
    InvalidNumber,
    MalformedBook,
    ProtocolError,
    UnknownInstrument,
    describe,
    quote,
)
from quantsaas.feeds import exact_json
from quantsaas.feeds.numbers import checked_id, fast_price, fast_size, ms_to_ns, number_text
from quantsaas.model import (
    MAX_NUMBER_TEXT,
    BookDelta,
    BookSnapshot,
    Instrument,
    Level,
    OptionSpec,
    OptionTicker,
    Side,
    Trade,
)

DERIBIT_SCALE = 8


def option_instrument(name: str) -> Instrument:
    """`BTC-24SEP21-8000-P` -> an option Instrument on deribit (prices in the base coin, or in
    USDC for linear `_USDC` options), underlying `BTC/USD`. The name is read by `option_names`."""
    parsed = option_names.parse(name)
    exponent = parsed.strike.as_tuple().exponent
    assert isinstance(exponent, int)
    strike_scale = max(0, -exponent)
    spec = OptionSpec(
        underlying=f"{parsed.base}/USD",
        expiry_ns=parsed.expiry_ns,
        strike=int(parsed.strike.scaleb(strike_scale)),
        strike_scale=strike_scale,
        kind=parsed.kind,
    )
    return Instrument(
        venue="deribit",
        base=parsed.base,
        quote=parsed.settle or parsed.base,
        native_symbol=name,
        price_scale=DERIBIT_SCALE,
        size_scale=DERIBIT_SCALE,
        tick_size=1,
        lot_size=1,
        option=spec,
    )


@dataclass(frozen=True, slots=True)
class RpcResult:
    id: int | None
    result: Any


@dataclass(frozen=True, slots=True)
class RpcError:
    id: int | None
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    test_request: bool


@dataclass(frozen=True, slots=True)
class BookChange:
    """One `book.{instrument}.{interval}` message: a snapshot or a change, with its ids."""

    change_id: int
    prev_change_id: int | None
    event: BookSnapshot | BookDelta


Parsed: TypeAlias = RpcResult | RpcError | Heartbeat | BookChange | OptionTicker | list[Trade]
Instruments: TypeAlias = Mapping[str, Instrument]


decode = exact_json.decoder("deribit")


def _text(value: Any) -> str:
    return number_text(value, "deribit")


def _float(value: Any) -> float:
    """Analytics fields (IV, greeks, index): floats by design of OptionTicker, and finite."""
    text = _text(value)
    number = float(text) if len(text) <= MAX_NUMBER_TEXT else math.inf
    if not math.isfinite(number):
        raise InvalidNumber(f"deribit: not a finite number: {quote(text, 40)}")
    return number


def _instrument(instruments: Instruments, name: Any) -> Instrument:
    found = instruments.get(name)
    if found is None:
        raise UnknownInstrument(f"deribit: frame for unsubscribed instrument {quote(name)}")
    return found


def _levels(inst: Instrument, rows: Any) -> tuple[Level, ...]:
    out: list[Level] = []
    for row in rows:
        if len(row) == 3:
            action, price, amount = row
        else:  # grouped books: [price, amount]
            action, (price, amount) = "new", row
        raw = fast_price(_text(price), inst.price_scale)
        if action == "delete":
            out.append((raw, 0))
        elif action in ("new", "change"):
            out.append((raw, fast_size(_text(amount), inst.size_scale)))
        else:
            raise ValueError(f"unknown book action {quote(action, 20)}")
    return tuple(out)


def _book(data: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> BookChange:
    inst = _instrument(instruments, data["instrument_name"])
    try:
        change_id = checked_id(data["change_id"])
        prev = data.get("prev_change_id")
        prev_id = None if prev is None else checked_id(prev)
        bids, asks = _levels(inst, data["bids"]), _levels(inst, data["asks"])
        ts_event = ms_to_ns(data["timestamp"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        name = inst.native_symbol
        raise MalformedBook(f"deribit: malformed book of {name}: {describe(exc)}", name) from None
    if data.get("type", "snapshot") == "snapshot":
        snapshot = BookSnapshot(
            inst,
            tuple(sorted(((p, s) for p, s in bids if s), reverse=True)),
            tuple(sorted((p, s) for p, s in asks if s)),
            change_id,
            ts_event,
            ts_recv,
        )
        return BookChange(change_id, None, snapshot)
    delta = BookDelta(inst, bids, asks, change_id, ts_event, ts_recv)
    return BookChange(change_id, prev_id, delta)


def _opt_price(inst: Instrument, value: Any) -> int | None:
    if value is None:
        return None
    raw = fast_size(_text(value), inst.price_scale)  # 0: nothing quoted
    return raw or None


def _ticker(data: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> OptionTicker:
    inst = _instrument(instruments, data["instrument_name"])
    greeks = data.get("greeks") or {}
    bid_iv, ask_iv = data.get("bid_iv"), data.get("ask_iv")
    return OptionTicker(
        instrument=inst,
        mark_price=fast_size(_text(data["mark_price"]), inst.price_scale),
        mark_iv=_float(data["mark_iv"]),
        bid_iv=None if bid_iv is None else _float(bid_iv),
        ask_iv=None if ask_iv is None else _float(ask_iv),
        best_bid_price=_opt_price(inst, data.get("best_bid_price")),
        best_ask_price=_opt_price(inst, data.get("best_ask_price")),
        underlying_price=_float(data["underlying_price"]),
        underlying_index=str(data["underlying_index"]),
        index_price=_float(data["index_price"]),
        interest_rate=_float(data.get("interest_rate", 0)),
        open_interest=fast_size(_text(data["open_interest"]), inst.size_scale),
        delta=_float(greeks.get("delta", 0)),
        gamma=_float(greeks.get("gamma", 0)),
        vega=_float(greeks.get("vega", 0)),
        theta=_float(greeks.get("theta", 0)),
        rho=_float(greeks.get("rho", 0)),
        ts_event=ms_to_ns(data["timestamp"]),
        ts_recv=ts_recv,
    )


def _trades(data: Any, instruments: Instruments, ts_recv: int) -> list[Trade]:
    out = []
    for row in data:
        inst = instruments.get(row["instrument_name"])
        if inst is None:
            continue  # trades.option.BTC carries the whole chain
        out.append(
            Trade(
                inst,
                fast_price(_text(row["price"]), inst.price_scale),
                fast_size(_text(row["amount"]), inst.size_scale),
                Side.BUY if row["direction"] == "buy" else Side.SELL,
                str(row["trade_id"]),
                ms_to_ns(row["timestamp"]),
                ts_recv,
            )
        )
    return out


def parse_message(message: Any, instruments: Instruments, ts_recv: int) -> Parsed | None:
    """A decoded frame -> one parsed item; None for channels we do not consume."""
    if not isinstance(message, dict):
        raise ProtocolError(f"deribit: expected a JSON object, got {type(message).__name__}")
    try:
        if "error" in message:
            error = message["error"]
            return RpcError(message.get("id"), int(error["code"]), str(error.get("message")))
        if "result" in message:
            return RpcResult(message.get("id"), message["result"])
        method = message.get("method")
        params = message.get("params") or {}
        if method == "heartbeat":
            return Heartbeat(params.get("type") == "test_request")
        if method != "subscription":
            keys = quote(sorted(message)[:8])
            raise ProtocolError(f"deribit: unrecognised frame with keys {keys}")
        channel, data = str(params["channel"]), params["data"]
        kind = channel.partition(".")[0]
        if kind == "book":
            return _book(data, instruments, ts_recv)
        if kind == "ticker":
            return _ticker(data, instruments, ts_recv)
        if kind == "trades":
            return _trades(data, instruments, ts_recv)
        return None
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ProtocolError(f"deribit: malformed frame: {describe(exc)}") from None


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> Parsed | None:
    return parse_message(decode(raw), instruments, ts_recv)
