"""`replay-raw` for Kraken (v1 and v2 frames alike, several pairs in one file) and Deribit.

Kraken: every book checksum is verified against the text-exact book (`kraken.book`); a failure is
counted, the pair's book is dropped and waits for the next snapshot, as the live feed would after
resubscribing. Deribit: `change_id` continuity per instrument; a break is counted as a gap and the
book waits for the next snapshot. Instruments are taken from the file itself.
"""

from __future__ import annotations

from typing import Any

from quantsaas.errors import ChecksumMismatch, ProtocolError, SequenceGap
from quantsaas.feeds.deribit import parse as deribit_parse
from quantsaas.feeds.deribit.book_sync import ChangeSync
from quantsaas.feeds.kraken import parse as kraken_parse
from quantsaas.feeds.kraken.book import KrakenBook
from quantsaas.feeds.kraken.v1 import V1Book, parse_v1
from quantsaas.feeds.replay_raw import Replay
from quantsaas.model import Instrument, Ticker, Trade


def _kraken_pairs(message: Any) -> list[str]:
    if isinstance(message, list) and message and isinstance(message[-1], str):
        return [message[-1]]
    if isinstance(message, dict):
        data = message.get("data")
        if isinstance(data, list):
            return [e["symbol"] for e in data if isinstance(e, dict) and "symbol" in e]
    return []


def replay_kraken(lines: list[bytes], depth: int = 10) -> Replay:
    replay = Replay()
    books: dict[str, KrakenBook] = {}
    for line in lines:
        replay.frames += 1
        try:
            message = kraken_parse.decode(line)
            for pair in _kraken_pairs(message):
                if isinstance(pair, str):
                    replay.instrument(pair, kraken_parse.kraken_instruments)
            if isinstance(message, list) or (isinstance(message, dict) and "event" in message):
                item = parse_v1(message, 0)
                items: list[Any] = [item] if isinstance(item, V1Book) else []
            else:
                items = kraken_parse.parse_message(message, replay.instruments, 0)
        except ProtocolError:
            replay.malformed += 1
            continue
        for item in items:
            if isinstance(item, V1Book):
                _kraken_book(replay, books, item.message, item.depth)
            elif isinstance(item, kraken_parse.BookMessage):
                _kraken_book(replay, books, item, depth)
            elif isinstance(item, Trade | Ticker):
                replay.publish([item])
            else:
                replay.events[type(item).__name__] += 1
    return replay


def _kraken_book(
    replay: Replay, books: dict[str, KrakenBook], item: kraken_parse.BookMessage, depth: int
) -> None:
    inst = replay.instruments.get(item.symbol)
    if inst is None:
        replay.malformed += 1
        return
    book = books.setdefault(item.symbol, KrakenBook(inst, depth))
    checked = item.update.checksum is not None and (book.synced or item.snapshot)
    try:
        if item.snapshot:
            replay.publish([book.on_snapshot(item.update, 0)])
        else:
            delta = book.on_update(item.update, 0)
            if delta is not None:
                replay.publish([delta])
    except ChecksumMismatch:
        replay.checksum_failures += 1
        replay.resyncs += 1
        replay.books.pop(item.symbol, None)
        return
    except (ProtocolError, ValueError):
        replay.malformed += 1
        book.reset()
        replay.books.pop(item.symbol, None)
        return
    replay.checksums_verified += checked


def replay_deribit(lines: list[bytes]) -> Replay:
    replay = Replay()
    syncs: dict[str, ChangeSync] = {}
    for line in lines:
        replay.frames += 1
        try:
            message = deribit_parse.decode(line)
            name = _deribit_name(message)
            if name is not None and name not in replay.instruments:
                replay.instruments[name] = _deribit_instrument(name)
            item = deribit_parse.parse_message(message, replay.instruments, 0)
        except ProtocolError:
            replay.malformed += 1
            continue
        if isinstance(item, deribit_parse.BookChange):
            sync = syncs.setdefault(item.event.instrument.native_symbol, ChangeSync(name or ""))
            try:
                event = sync.on_change(item)
            except SequenceGap:
                replay.gaps += 1
                replay.resyncs += 1
                replay.books.pop(item.event.instrument.native_symbol, None)
                continue
            if event is not None:
                replay.publish([event])
        elif isinstance(item, list):
            replay.publish(item)
        elif item is not None and not isinstance(item, deribit_parse.Heartbeat):
            if isinstance(item, deribit_parse.RpcResult | deribit_parse.RpcError):
                replay.events[type(item).__name__] += 1
            else:
                replay.publish([item])
    return replay


def _deribit_name(message: Any) -> str | None:
    if not isinstance(message, dict):
        return None
    params = message.get("params")
    data = params.get("data") if isinstance(params, dict) else None
    name = data.get("instrument_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _deribit_instrument(name: str) -> Instrument:
    """Options by name; anything else (perpetuals, futures) as a plain pair at Deribit scale."""
    try:
        return deribit_parse.option_instrument(name)
    except ProtocolError:
        base = name.partition("-")[0].partition("_")[0]
        scale = deribit_parse.DERIBIT_SCALE
        return Instrument("deribit", base, "USD", name, scale, scale, 1, 1)
