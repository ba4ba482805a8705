"""`quantsaas replay-raw`: run a file of raw venue frames through the parser and book code, offline.

One venue message per line, exactly as received. Kraken (v1 and v2 frames, several pairs) and
Deribit are in `replay_venues`. Binance books need the REST depth response
(`--snapshot`); it is applied right after the first diff of the first depth symbol is buffered,
as the live feed would fetch it. Coinbase books come from the WebSocket snapshot in the file
(Exchange or Advanced Trade frames, told apart by their shape). The result is one JSON object.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from quantsaas.book import L2Book
from quantsaas.errors import BookError, ConfigError, ProtocolError, SequenceGap
from quantsaas.feeds.binance import parse as binance_parse
from quantsaas.feeds.binance.book_sync import DepthSync
from quantsaas.feeds.coinbase import advanced_parse, exchange_parse
from quantsaas.feeds.instruments import binance_instruments, coinbase_instruments
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent, Ticker, Trade

TOP = 10


class Replay:
    """Books and counters of one replay."""

    def __init__(self) -> None:
        self.instruments: dict[str, Instrument] = {}
        self.books: dict[str, L2Book] = {}
        self.events: collections.Counter[str] = collections.Counter()
        self.frames = 0
        self.gaps = 0
        self.resyncs = 0
        self.malformed = 0
        self.checksums_verified = 0
        self.checksum_failures = 0

    def instrument(self, native: str, build: Callable[[list[str]], tuple[Instrument, ...]]) -> None:
        if native not in self.instruments:
            self.instruments[native] = build([native])[0]

    def publish(self, events: Iterable[MarketEvent]) -> None:
        for event in events:
            self.events[type(event).__name__] += 1
            if not isinstance(event, BookSnapshot | BookDelta):
                continue
            native = event.instrument.native_symbol
            book = self.books.setdefault(native, L2Book(event.instrument))
            try:
                if isinstance(event, BookSnapshot):
                    book.apply_snapshot(event)
                else:
                    book.apply_delta(event)
            except BookError:
                self.resyncs += 1

    def result(self) -> dict[str, Any]:
        books = {}
        for native, book in sorted(self.books.items()):
            inst = book.instrument
            books[native] = {
                "bids": [[inst.format_price(p), inst.format_size(s)] for p, s in book.bids(TOP)],
                "asks": [[inst.format_price(p), inst.format_size(s)] for p, s in book.asks(TOP)],
                "valid": book.valid,
            }
        return {
            "frames": self.frames,
            "events": dict(sorted(self.events.items())),
            "gaps": self.gaps,
            "resyncs": self.resyncs,
            "checksums_verified": self.checksums_verified,
            "checksum_failures": self.checksum_failures,
            "malformed": self.malformed,
            "books": books,
        }


def _replay_binance(lines: list[bytes], snapshot: bytes | None) -> Replay:
    replay = Replay()
    syncs: dict[str, DepthSync] = {}
    snapshot_for: str | None = None
    for line in lines:
        replay.frames += 1
        try:
            msg = binance_parse.decode(line)
            payload = msg.get("data", msg) if isinstance(msg, dict) else None
            if isinstance(payload, dict) and isinstance(payload.get("s"), str):
                replay.instrument(payload["s"], binance_instruments)
            item = binance_parse.parse_message(msg, replay.instruments, 0)
        except ProtocolError:
            replay.malformed += 1
            continue
        if not isinstance(item, binance_parse.DepthDiff):
            if isinstance(item, Trade | Ticker):
                replay.publish([item])
            continue
        inst = item.delta.instrument
        sync = syncs.setdefault(inst.native_symbol, DepthSync(inst))
        try:
            delta = sync.on_diff(item)
        except SequenceGap:
            replay.gaps += 1
            replay.resyncs += 1
            continue
        if delta is not None:
            replay.publish([delta])
        if snapshot is not None and snapshot_for in (None, inst.native_symbol) and sync.buffer:
            snapshot_for = inst.native_symbol
            depth = binance_parse.parse_depth_snapshot(snapshot, inst, 0)
            snapshot = None
            try:
                replay.publish(sync.on_snapshot(depth))
            except SequenceGap:
                replay.gaps += 1
                replay.resyncs += 1
    return replay


def _products(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        product = node.get("product_id")
        if isinstance(product, str):
            found.add(product)
        for value in node.values():
            _products(value, found)
    elif isinstance(node, list):
        for value in node:
            _products(value, found)


def _replay_coinbase(lines: list[bytes]) -> Replay:
    replay = Replay()
    envelope_seq: int | None = None
    for line in lines:
        replay.frames += 1
        try:
            msg = orjson.loads(line)
            products: set[str] = set()
            _products(msg, products)
            for product in sorted(products):
                replay.instrument(product, coinbase_instruments)
            if isinstance(msg, dict) and "sequence_num" in msg:
                envelope = advanced_parse.parse_message(msg, replay.instruments, 0)
                if envelope_seq is not None and envelope.sequence_num > envelope_seq + 1:
                    replay.gaps += 1
                envelope_seq = envelope.sequence_num
                replay.publish(event for _, event in envelope.events if event is not None)
            else:
                item = exchange_parse.parse_message(msg, replay.instruments, 0)
                if isinstance(item, exchange_parse.Sequenced) and item.event is not None:
                    replay.publish([item.event])
        except (ProtocolError, orjson.JSONDecodeError):
            replay.malformed += 1
        except exchange_parse.VenueRefused:
            replay.events["error"] += 1
    return replay


VENUES = ("binance", "coinbase", "kraken", "deribit")


def replay_raw(venue: str, frames: Path, snapshot: Path | None = None) -> dict[str, Any]:
    lines = [line for line in frames.read_bytes().splitlines() if line.strip()]
    if venue == "binance":
        return _replay_binance(lines, snapshot.read_bytes() if snapshot else None).result()
    if venue == "coinbase":
        return _replay_coinbase(lines).result()
    from quantsaas.feeds.replay_venues import replay_deribit, replay_kraken

    if venue == "kraken":
        return replay_kraken(lines).result()
    if venue == "deribit":
        return replay_deribit(lines).result()
    raise ConfigError(f"replay-raw: unknown venue {venue!r}; known: {', '.join(VENUES)}")
