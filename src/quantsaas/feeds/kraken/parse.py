"""Pure parsers for Kraken Spot WebSocket v2 frames: raw text -> parsed items.

No I/O, no book state. v2 sends prices and quantities as JSON numbers whose exact lexeme matters
(the book checksum is computed over it, trailing zeros included), so frames are decoded by
msgspec with `float_hook=str`: every number reaches us as the venue's own text, never as a
float. `book` frames take a typed path whose levels go to the book as decoded (`TextLevel`
structs); the book checks each number as it converts it (`kraken.book`), trade and ticker
numbers are checked here (`feeds.numbers`). Anything malformed raises `ProtocolError` naming the
frame kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec

from quantsaas.errors import ConfigError, ProtocolError, UnknownInstrument, describe, quote
from quantsaas.feeds import exact_json
from quantsaas.feeds.kraken.book import BookUpdate, TextLevel
from quantsaas.feeds.numbers import fast_price, fast_size, number_text
from quantsaas.feeds.numbers import iso_ns as _iso_ns
from quantsaas.model import Instrument, Side, Ticker, Trade

KRAKEN_SCALE = 10
"""Decimals of every Kraken instrument (prices and sizes); Kraken's precisions are at most 10."""

BASE_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
"""v1 names of assets (v2 uses the common ones)."""


def kraken_instruments(symbols: list[str] | tuple[str, ...]) -> tuple[Instrument, ...]:
    """`BTC/USD` (or `BTC-USD`) -> the v2 pair `BTC/USD`; v1's `XBT/USD` is canonical BTC/USD."""
    found = []
    for text in symbols:
        native = text.strip().upper().replace("-", "/")
        base, _, quote_asset = native.partition("/")
        if not base or not quote_asset:
            raise ConfigError(f"kraken pair {quote(text)} must look like BTC/USD")
        found.append(
            Instrument(
                venue="kraken",
                base=BASE_ALIASES.get(base, base),
                quote=BASE_ALIASES.get(quote_asset, quote_asset),
                native_symbol=native,
                price_scale=KRAKEN_SCALE,
                size_scale=KRAKEN_SCALE,
                tick_size=1,
                lot_size=1,
            )
        )
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Status:
    """`status`: the venue's trading state (`online`, `maintenance`, `cancel_only`, ...)."""

    system: str


@dataclass(frozen=True, slots=True)
class Ack:
    """A reply to a request (`subscribe`, `unsubscribe`, `pong`)."""

    method: str
    success: bool
    error: str | None
    symbol: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


class BookMessage(msgspec.Struct, frozen=True, gc=False):
    """One symbol's part of a `book` frame."""

    symbol: str
    snapshot: bool
    update: BookUpdate


@dataclass(frozen=True, slots=True)
class Precision:
    """One pair of the `instrument` channel: its price and quantity decimals."""

    symbol: str
    price_precision: int
    qty_precision: int


Parsed: TypeAlias = Status | Ack | Heartbeat | BookMessage | Trade | Ticker | Precision
Instruments: TypeAlias = Mapping[str, Instrument]


CHANNELS = frozenset(("book", "trade", "ticker", "heartbeat", "status", "instrument"))
"""Channels parsed; frames of any other channel are well-formed but ignored."""

decode = exact_json.decoder("kraken")


def text(value: Any) -> str:
    """A v2 JSON number (kept as its text) -> that text; InvalidNumber for anything else."""
    return number_text(value, "kraken")


def iso_ns(value: Any) -> int:
    """`2025-05-06T09:17:26.208075Z` -> ns since the epoch (exact, without datetime)."""
    if not isinstance(value, str):
        raise ProtocolError(f"kraken: expected an ISO timestamp, got {quote(value, 40)}")
    return _iso_ns(value)


def _levels(rows: Any) -> list[TextLevel]:
    return [TextLevel(text(row["price"]), text(row["qty"])) for row in rows]


class _Entry(msgspec.Struct, gc=False):
    symbol: str
    bids: list[TextLevel] = []
    asks: list[TextLevel] = []
    checksum: Any = None
    timestamp: Any = None


class _BookFrame(msgspec.Struct, gc=False):
    channel: str
    type: Any
    data: list[_Entry]
    method: Any = msgspec.UNSET


_BOOK_FRAME = msgspec.json.Decoder(_BookFrame, float_hook=str)


def _typed_book(raw: str | bytes, ts_recv: int) -> list[Parsed] | None:
    """A `book` frame through the typed path: msgspec structs, levels straight into
    `TextLevel`s with their numbers as exact text (or JSON integers), which the book checks as
    it converts them; None when it does not accept the frame whole (the general path then
    gives the error)."""
    try:
        frame = _BOOK_FRAME.decode(raw)
        if frame.method is not msgspec.UNSET or frame.channel != "book":
            return None
        snapshot = frame.type == "snapshot"
        out: list[Parsed] = []
        for entry in frame.data:
            checksum, stamp = entry.checksum, entry.timestamp
            if checksum is not None and type(checksum) is not int:
                return None
            update = BookUpdate(
                entry.bids, entry.asks, checksum, ts_recv if stamp is None else iso_ns(stamp)
            )
            out.append(BookMessage(entry.symbol, snapshot, update))
        return out
    except (msgspec.DecodeError, ValueError, ProtocolError):
        return None


def _book(message: Mapping[str, Any], ts_recv: int) -> list[Parsed]:
    snapshot = message["type"] == "snapshot"
    out: list[Parsed] = []
    for entry in message["data"]:
        stamp = entry.get("timestamp")
        checksum = entry.get("checksum")
        if checksum is not None and (isinstance(checksum, bool) or not isinstance(checksum, int)):
            raise ProtocolError(f"kraken: book checksum must be an integer, not {quote(checksum)}")
        update = BookUpdate(
            _levels(entry.get("bids", ())),
            _levels(entry.get("asks", ())),
            checksum,
            ts_recv if stamp is None else iso_ns(stamp),
        )
        out.append(BookMessage(str(entry["symbol"]), snapshot, update))
    return out


def _instrument(instruments: Instruments, symbol: Any) -> Instrument:
    found = instruments.get(symbol)
    if found is None:
        raise UnknownInstrument(f"kraken: frame for unsubscribed pair {quote(symbol)}")
    return found


def _trades(message: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> list[Parsed]:
    out: list[Parsed] = []
    for entry in message["data"]:
        inst = _instrument(instruments, entry["symbol"])
        side = entry["side"]
        if side not in ("buy", "sell"):
            raise ProtocolError(f"kraken: trade side {quote(side, 20)}")
        out.append(
            Trade(
                inst,
                fast_price(text(entry["price"]), inst.price_scale),
                fast_size(text(entry["qty"]), inst.size_scale),
                Side.BUY if side == "buy" else Side.SELL,
                str(entry["trade_id"]),
                iso_ns(entry["timestamp"]),
                ts_recv,
            )
        )
    return out


def _tickers(message: Mapping[str, Any], instruments: Instruments, ts_recv: int) -> list[Parsed]:
    out: list[Parsed] = []
    for entry in message["data"]:
        inst = _instrument(instruments, entry["symbol"])
        ps, ss = inst.price_scale, inst.size_scale  # a side may be quoted at 0: empty
        last, volume = entry.get("last"), entry.get("volume")
        stamp = entry.get("timestamp")
        out.append(
            Ticker(
                inst,
                fast_size(text(entry["bid"]), ps),
                fast_size(text(entry["bid_qty"]), ss),
                fast_size(text(entry["ask"]), ps),
                fast_size(text(entry["ask_qty"]), ss),
                None if last is None else fast_price(text(last), ps),
                None if volume is None else fast_size(text(volume), ss),
                ts_recv if stamp is None else iso_ns(stamp),
                ts_recv,
            )
        )
    return out


def _precisions(message: Mapping[str, Any]) -> list[Parsed]:
    pairs = message["data"].get("pairs", [])
    return [
        Precision(str(p["symbol"]), int(p["price_precision"]), int(p["qty_precision"]))
        for p in pairs
    ]


def parse_message(message: Any, instruments: Instruments, ts_recv: int) -> list[Parsed]:
    """A decoded v2 frame -> parsed items; [] for channels we do not consume."""
    if not isinstance(message, dict):
        raise ProtocolError(f"kraken: expected a JSON object, got {type(message).__name__}")
    try:
        if "method" in message:
            result = message.get("result")
            symbol = result.get("symbol") if isinstance(result, dict) else None
            success = bool(message.get("success", message["method"] == "pong"))
            error = message.get("error")
            return [Ack(str(message["method"]), success, error and str(error), symbol)]
        channel = message.get("channel")
        if channel == "book":
            return _book(message, ts_recv)
        if channel == "trade":
            return _trades(message, instruments, ts_recv)
        if channel == "ticker":
            return _tickers(message, instruments, ts_recv)
        if channel == "heartbeat":
            return [Heartbeat()]
        if channel == "status":
            return [Status(str(message["data"][0]["system"]))]
        if channel == "instrument":
            return _precisions(message)
        if not isinstance(channel, str):
            keys = quote(sorted(message)[:8])
            raise ProtocolError(f"kraken: unrecognised frame with keys {keys}")
        return []
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        kind = quote(message.get("channel", "frame"), 40)
        raise ProtocolError(f"kraken: malformed {kind}: {describe(exc)}") from None


def book_frame(raw: str | bytes, ts_recv: int) -> list[Parsed] | None:
    """A v2 `book` frame through the typed path; None for any other frame (or one it does not
    accept whole: the general path then parses it and gives the exact error)."""
    at = raw.find(b'"book"', 0, 24) if isinstance(raw, bytes) else raw.find('"book"', 0, 24)
    return None if at < 0 else _typed_book(raw, ts_recv)


def parse_frame(raw: str | bytes, instruments: Instruments, ts_recv: int) -> list[Parsed]:
    items = book_frame(raw, ts_recv)
    return parse_message(decode(raw), instruments, ts_recv) if items is None else items
