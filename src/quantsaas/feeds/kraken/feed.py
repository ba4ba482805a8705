"""Kraken Spot feed over WebSocket v2: `book` (checksummed), `trade`, `ticker`, `instrument`.

Books come in-band (snapshot then updates). Kraken has no sequence numbers: after every message
the text-exact book (`kraken.book.KrakenBook`) is truncated to the subscribed depth and its CRC32
compared with the venue's; on a mismatch the update is not published, the pair's book is marked
stale and its `book` subscription is renewed (unsubscribe + subscribe), which brings a fresh
snapshot (counted as a resync in /health; the other pairs are not touched). Verification
can be switched off (`verify_checksum=False`). A `status` other than `online` (maintenance,
cancel_only, ...) marks every book stale and the feed down until the venue is online again; then
it reconnects for fresh snapshots.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from websockets.asyncio.client import ClientConnection

from quantsaas.errors import (
    ChecksumMismatch,
    ConfigError,
    MalformedBook,
    ProtocolError,
    UnknownInstrument,
    quote,
)
from quantsaas.feeds.base import EventSink, FeedState
from quantsaas.feeds.kraken.book import DEPTHS, KrakenBook
from quantsaas.feeds.kraken.parse import (
    CHANNELS,
    Ack,
    BookMessage,
    Precision,
    Status,
    book_frame,
    decode,
    parse_message,
)
from quantsaas.feeds.kraken.v1 import Parsed as V1Parsed
from quantsaas.feeds.kraken.v1 import V1Book, parse_v1, parse_v1_frame
from quantsaas.feeds.transport import TransportConfig, WsFeed
from quantsaas.model import Instrument, MarketEvent, Ticker, Trade

log = logging.getLogger(__name__)

URL = "wss://ws.kraken.com/v2"
_ARRAY = ("[", b"[")


class KrakenFeed(WsFeed):
    venue = "kraken"

    def __init__(
        self,
        instruments: Sequence[Instrument],
        url: str = URL,
        config: TransportConfig | None = None,
        depth: int = 10,
        verify_checksum: bool = True,
    ) -> None:
        if depth not in DEPTHS:
            raise ConfigError(f"kraken book depth must be one of {DEPTHS}, not {depth}")
        super().__init__(instruments, url, config)
        self.depth = depth
        self.by_native = {instrument.native_symbol: instrument for instrument in self.instruments}
        self.books = {
            native: KrakenBook(inst, depth, verify_checksum)
            for native, inst in self.by_native.items()
        }
        self.system = "unknown"
        self.precisions: dict[str, Precision] = {}
        self.checksum_failures = 0
        self._conn: ClientConnection | None = None
        self._req_id = 100

    def subscribe_messages(self) -> list[str]:
        symbols = list(self.by_native)
        params: list[dict[str, object]] = [
            {"channel": "book", "symbol": symbols, "depth": self.depth, "snapshot": True},
            {"channel": "trade", "symbol": symbols},
            {"channel": "ticker", "symbol": symbols},
            {"channel": "instrument", "snapshot": True},
        ]
        return [
            orjson.dumps({"method": "subscribe", "params": p, "req_id": i + 1}).decode()
            for i, p in enumerate(params)
        ]

    def probe_message(self) -> str | None:
        """Kraken's application ping; heartbeats come only when no other update does."""
        self._req_id += 1
        return f'{{"method":"ping","req_id":{self._req_id}}}'

    def on_connect(self) -> None:
        for book in self.books.values():
            book.reset()
        self.system = "unknown"

    async def _read(self, conn: ClientConnection, sink: EventSink) -> None:
        self._conn = conn  # for resubscribes outside the subscribe burst
        try:
            await super()._read(conn, sink)
        finally:
            self._conn = None

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        book = self.books.get(instrument.native_symbol)
        if book is None:
            return
        book.reset()
        self._resyncing(instrument.native_symbol, f"engine: {reason}")

    def untrusted_book(self, symbol: str, reason: str) -> None:
        book = self.books.get(symbol)
        if book is None:
            return
        book.reset()
        self.books_stale([book.instrument], reason)
        self._resyncing(symbol, reason)

    def _resyncing(self, symbol: str, reason: str) -> None:
        """Drop one pair's book and resubscribe it: the venue answers with a fresh snapshot
        (updates in between are ignored, the book is not synced)."""
        self.stats.resyncs += 1
        self.stats.state = FeedState.RESYNCING
        self.stats.record_error(reason)
        log.warning("kraken: resync: %s", reason)
        conn = self._conn
        if conn is None:
            self.reconnect_soon(reason)
            return
        for method in ("unsubscribe", "subscribe"):
            params: dict[str, object] = {"channel": "book", "symbol": [symbol]}
            if method == "subscribe":
                params.update(depth=self.depth, snapshot=True)
            self._req_id += 1
            body = {"method": method, "params": params, "req_id": self._req_id}
            self.spawn(conn.send(orjson.dumps(body).decode()), f"{method}:{symbol}")

    def handle_frame(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        if raw[:1] in _ARRAY:  # legacy v1 data frames (recorded files): typed when usual
            return self._on_v1(parse_v1_frame(raw, ts_recv), ts_recv)
        items = book_frame(raw, ts_recv)  # v2 book frames, most of the traffic: typed
        if items is None:
            message = decode(raw)
            if isinstance(message, list) or (isinstance(message, dict) and "event" in message):
                return self._on_v1(parse_v1(message, ts_recv), ts_recv)
            try:
                items = parse_message(message, self.by_native, ts_recv)
            except UnknownInstrument as exc:
                raise ProtocolError(str(exc)) from None
            if not items and message.get("channel") not in CHANNELS:
                self.stats.ignored += 1
        out: list[MarketEvent] = []
        for item in items:
            if isinstance(item, BookMessage):
                out.extend(self._on_book(item, ts_recv))
            elif isinstance(item, Trade | Ticker):
                out.append(item)
            elif isinstance(item, Status):
                self._on_status(item.system)
            elif isinstance(item, Ack) and not item.success:
                said = f"{quote(item.method, 40)} {quote(item.symbol, 40)}: {quote(item.error)}"
                raise ProtocolError(f"kraken refused {said}")
            elif isinstance(item, Precision) and item.symbol in self.by_native:
                self.precisions[item.symbol] = item
                finest = max(item.price_precision, item.qty_precision)
                if finest > self.by_native[item.symbol].price_scale:
                    self.stats.record_error(
                        f"kraken {item.symbol}: {finest} decimals exceed the instrument's scale"
                    )
        return out

    def _on_v1(self, item: V1Parsed, ts_recv: int) -> list[MarketEvent]:
        """A legacy v1 frame (recorded files): its book channel's depth is the book's."""
        if not isinstance(item, V1Book):
            return []
        book = self.books.get(item.symbol)
        if book is not None and book.depth != item.depth and item.snapshot:
            self.books[item.symbol] = KrakenBook(book.instrument, item.depth, book.verify)
        return self._on_book(item, ts_recv)

    def _on_status(self, system: str) -> None:
        previous, self.system = self.system, system
        if system == "online":
            if previous not in ("online", "unknown"):
                self.reconnect_soon(f"venue back online after {previous}: fresh snapshots")
            return
        reason = f"venue status {quote(system, 40)}"
        self.stats.state = FeedState.DISCONNECTED
        self.stats.record_error(reason)
        log.warning("kraken: %s", reason)
        for book in self.books.values():
            book.reset()
        self.books_stale(self.instruments, reason)

    def _on_book(self, item: BookMessage, ts_recv: int) -> list[MarketEvent]:
        book = self.books.get(item.symbol)
        if book is None:
            raise ProtocolError(f"kraken: book for unsubscribed pair {quote(item.symbol)}")
        if self.system not in ("online", "unknown"):
            return []  # maintenance: the venue's books are not trusted until it is back online
        checked = book.verify and item.update.checksum is not None
        try:
            if item.snapshot:
                event: MarketEvent | None = book.on_snapshot(item.update, ts_recv)
                if all(b.synced for b in self.books.values()):
                    self.stats.state = FeedState.LIVE
            elif not book.synced:
                return []  # after a mismatch: wait for the resubscribe's snapshot
            else:
                event = book.on_update(item.update, ts_recv)
        except ChecksumMismatch as exc:
            self.checksum_failures += 1
            self.stats.checksum_failures += 1
            self.books_stale([book.instrument], str(exc))
            self._resyncing(item.symbol, str(exc))
            return []
        except MalformedBook as exc:  # the book took part of the message and reset itself
            self.stats.malformed += 1
            self._fail(f"bad frame ignored: {exc}")
            self.untrusted_book(item.symbol, str(exc))
            return []
        self.stats.checksums_verified += checked
        return [] if event is None else [event]
