"""Binance Spot feed: combined `@depth@100ms`, `@trade` and `@bookTicker` streams.

Books follow the official algorithm (`book_sync`): the REST `/api/v3/depth` snapshot is fetched
once the first diff of a symbol is buffered, on every (re)connect and after every gap or engine
resync request. The 24 h forced disconnect and `serverShutdown` lead to a reconnect and fresh
snapshots. The feed sends no control messages (the streams are in the URL), so the 5 inbound
messages/s limit only sees keep-alive pings and pongs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from quantsaas.errors import ProtocolError, SequenceGap, describe, quote
from quantsaas.feeds.base import EventSink, FeedState
from quantsaas.feeds.binance.book_sync import DepthSync, StaleSnapshot, SyncState
from quantsaas.feeds.binance.parse import (
    Control,
    DepthDiff,
    Parsed,
    ServerShutdown,
    parse_depth_snapshot,
    parse_frame,
)
from quantsaas.feeds.transport import Reconnect, TransportConfig, WsFeed
from quantsaas.model import Instrument, MarketEvent, Ticker, Trade, now_ns

log = logging.getLogger(__name__)

STREAMS = ("depth@100ms", "trade", "bookTicker")

SnapshotSource = Callable[[Instrument], bytes | None]
"""Offline replay: the recorded REST depth body for an instrument that wants one, or None."""


class BinanceFeed(WsFeed):
    venue = "binance"

    def __init__(
        self,
        instruments: Sequence[Instrument],
        ws_url: str = "wss://stream.binance.com:9443",
        rest_url: str = "https://api.binance.com",
        config: TransportConfig | None = None,
        depth_limit: int = 1000,
        retry_s: float = 1.0,
        snapshots: SnapshotSource | None = None,
    ) -> None:
        super().__init__(instruments, ws_url.rstrip("/"), config)
        self.rest_url = rest_url.rstrip("/")
        self.depth_limit = depth_limit
        self.retry_s = retry_s
        self.snapshots = snapshots
        """Offline (replay): REST depth bodies given instead of fetched, applied at once."""
        self.by_native = {instrument.native_symbol: instrument for instrument in self.instruments}
        self.syncs = {native: DepthSync(inst) for native, inst in self.by_native.items()}
        self._fetching: set[str] = set()
        self._probes = 0
        self._http: httpx.AsyncClient | None = None
        self._handlers: dict[type, Callable[[Any], list[MarketEvent]]] = {
            DepthDiff: self._on_diff,
            Trade: _publish,
            Ticker: _publish,
            ServerShutdown: self._on_shutdown,
            Control: self._on_control,
        }

    def connect_url(self) -> str:
        names = "/".join(
            f"{native.lower()}@{stream}" for native in self.by_native for stream in STREAMS
        )
        return f"{self.url}/stream?streams={names}"

    def subscribe_messages(self) -> list[str]:
        return []

    def probe_message(self) -> str | None:
        """Binance answers LIST_SUBSCRIPTIONS at once (1 of its 5 inbound messages/s)."""
        self._probes += 1
        return f'{{"method":"LIST_SUBSCRIPTIONS","id":{self._probes}}}'

    def on_connect(self) -> None:
        for sync in self.syncs.values():
            sync.reset()
        self._fetching.clear()

    async def run(self, sink: EventSink) -> None:
        async with httpx.AsyncClient(timeout=10.0, verify=self.config.ssl or True) as client:
            self._http = client
            try:
                await super().run(sink)
            finally:
                self._http = None

    def handle_frame(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        item: Parsed | None = parse_frame(raw, self.by_native, ts_recv)
        if item is None:
            self.stats.ignored += 1
            return []
        return self._handlers[type(item)](item)

    def _on_diff(self, diff: DepthDiff) -> list[MarketEvent]:
        sync = self.syncs[diff.delta.instrument.native_symbol]
        try:
            delta = sync.on_diff(diff)
        except SequenceGap as exc:
            self._resyncing(f"gap: {exc}", gap=True)
            self.books_stale([sync.instrument], str(exc))
            return []
        if delta is not None:
            return [delta]  # published, so the book is synced: no snapshot wanted
        if self.snapshots is not None and sync.wants_snapshot:
            return self._offline_snapshot(sync, diff.delta.ts_recv)
        return []

    def _offline_snapshot(self, sync: DepthSync, ts_recv: int) -> list[MarketEvent]:
        """Replay: bridge the buffer with the given depth body right away (no network)."""
        assert self.snapshots is not None
        body = self.snapshots(sync.instrument)
        if body is None:
            return []
        try:
            return list(sync.on_snapshot(parse_depth_snapshot(body, sync.instrument, ts_recv)))
        except SequenceGap as exc:
            self._resyncing(str(exc), gap=not isinstance(exc, StaleSnapshot))
            return []

    def _on_shutdown(self, _: ServerShutdown) -> list[MarketEvent]:
        raise Reconnect("venue announced serverShutdown")

    def _on_control(self, control: Control) -> list[MarketEvent]:
        if "code" in control.payload:
            raise ProtocolError(f"binance error reply: {quote(control.payload)}")
        return []

    def _resyncing(self, reason: str, gap: bool = False) -> None:
        if gap:
            self.stats.gaps += 1
        self.stats.resyncs += 1
        self.stats.state = FeedState.RESYNCING
        self.stats.record_error(reason)
        log.warning("binance: resync: %s", reason)

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        sync = self.syncs.get(instrument.native_symbol)
        if sync is None:
            return
        sync.reset()
        self._resyncing(f"engine: {reason}")

    def untrusted_book(self, symbol: str, reason: str) -> None:
        """A malformed diff was dropped: fetch a fresh REST snapshot for that symbol only."""
        sync = self.syncs.get(symbol)
        if sync is None:
            return
        sync.reset()
        self._resyncing(f"bad diff: {reason}")
        self.books_stale([sync.instrument], reason)

    def maintain(self, sink: EventSink) -> None:
        for native, sync in self.syncs.items():
            if sync.wants_snapshot and native not in self._fetching:
                self._fetching.add(native)
                self.spawn(self._fetch(sync, sink), f"snapshot:{native}")

    async def _fetch(self, sync: DepthSync, sink: EventSink) -> None:
        native = sync.instrument.native_symbol
        try:
            events = await self._snapshot_events(sync)
        except (StaleSnapshot, SequenceGap) as exc:
            self.stats.resyncs += 1
            self.stats.record_error(str(exc))
            log.warning("%s", exc)
            await asyncio.sleep(min(self.retry_s, 0.2))
        except (httpx.HTTPError, ProtocolError) as exc:
            self.stats.record_error(f"depth snapshot for {native} failed: {describe(exc)}")
            log.warning("binance: depth snapshot for %s failed: %s", native, describe(exc))
            await asyncio.sleep(self.retry_s)
        else:
            for event in events:
                sink(event)
            self.mark_data(events, now_ns())
            if all(s.state is SyncState.SYNCED for s in self.syncs.values()):
                self.stats.state = FeedState.LIVE
        finally:
            self._fetching.discard(native)

    async def _snapshot_events(self, sync: DepthSync) -> list[Any]:
        if self._http is None:
            raise ProtocolError("binance: no HTTP client (feed not running)")
        response = await self._http.get(
            f"{self.rest_url}/api/v3/depth",
            params={"symbol": sync.instrument.native_symbol, "limit": self.depth_limit},
        )
        if response.status_code in (418, 429):
            wait = float(response.headers.get("Retry-After", "5"))
            await asyncio.sleep(min(wait, 60.0))
        response.raise_for_status()
        depth = parse_depth_snapshot(response.content, sync.instrument, now_ns())
        return list(sync.on_snapshot(depth))


def _publish(event: MarketEvent) -> list[MarketEvent]:
    return [event]
