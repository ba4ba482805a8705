"""The shared WebSocket transport every venue feed runs on.

`WsFeed.run` connects, sends the venue's subscribe messages (paced), reads frames, stamps each with
a local receive time, hands it to the raw-frame taps and then to the venue protocol
(`handle_frame`), and publishes the resulting events. It answers pings (the `websockets` library
does this) and sends its own keep-alive pings. Liveness and data age are told apart: every venue
sends something on a live connection (Coinbase and Kraken heartbeats each second, or the answer
to the venue's own probe that `probe_message` gives after `probe_s` of quiet: Binance
LIST_SUBSCRIPTIONS, Kraken ping, Deribit public/test), so no frame at all for `liveness_s` means
a dead connection, found within seconds; heartbeats never count as data, and a connection
without market data for `stall_s` is re-established too. Reconnects use capped, jittered
exponential backoff. After every (re)connect the venue protocol must rebuild its books from
fresh snapshots (`on_connect`).

A venue subclass holds only its wire protocol: URL, subscribe messages, frame handling, and an
optional `maintain` hook that may `spawn` connection-scoped tasks (REST snapshot fetches).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from quantsaas.errors import (
    ConfigError,
    ConnectError,
    MalformedBook,
    ProtocolError,
    SequenceGap,
    VenueError,
    clip,
)
from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.model import Instrument, MarketEvent, now_ns

log = logging.getLogger(__name__)

RawTap = Callable[[str, str | bytes, int], None]
"""Called with (venue, raw frame, local receive time in ns) before the frame is parsed."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt n (0-based): min(cap, initial * factor**n), full jitter
    over its upper `jitter` fraction."""

    initial_s: float = 0.5
    cap_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap_s, self.initial_s * self.factor ** min(attempt, 32))
        return ceiling * (1.0 - self.jitter * rng())


@dataclass(frozen=True, slots=True)
class TransportConfig:
    stall_s: float = 30.0
    """No market data for this long: the connection is dropped and re-established."""
    liveness_s: float = 5.0
    """No frame at all (data, heartbeat, pong, ack) for this long: the connection is dead."""
    probe_s: float = 2.0
    """After this long without a frame, send the venue's probe (`probe_message`), at most once
    per `probe_s`, so a quiet but live connection answers before `liveness_s`."""
    max_frame_bytes: int = 64 * 1024 * 1024
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    open_timeout_s: float = 10.0
    subscribe_interval_s: float = 0.25
    """Pause between subscribe messages (Binance allows 5 inbound messages per second)."""
    poll_s: float = 0.2
    """How often the read loop wakes without a frame, to check stalls and run `maintain`."""
    backoff: Backoff = field(default_factory=Backoff)
    ssl: ssl.SSLContext | None = None
    """TLS trust for wss:// and https:// (`venue_ssl_context`); None: the libraries' defaults."""


def venue_ssl_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS trust of venue connections, WebSocket and REST alike. None (no `ca_file`) keeps
    each library's default trust; with `ca_file` (`QUANTSAAS_CA_FILE`, e.g. the CA a
    `fake-exchange --tls` printed) the system's CAs and that one are trusted."""
    if ca_file is None:
        return None
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA file {str(ca_file)[:100]!r}: {exc}") from None
    return context


class Reconnect(VenueError):
    """The venue protocol wants a fresh connection (shutdown notice, gap it cannot bridge)."""


class WsFeed(Feed, abc.ABC):
    """A venue feed over one WebSocket connection, reconnected for ever until cancelled."""

    def __init__(
        self, instruments: Sequence[Instrument], url: str, config: TransportConfig | None = None
    ) -> None:
        super().__init__(instruments)
        self.url = url
        self.config = config or TransportConfig()
        self.taps: list[RawTap] = []
        self.stats.endpoint = url
        self._reconnect_reason: str | None = None
        self._last_data = 0.0
        self._last_frame = 0.0
        self._last_probe = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._delivered = False

    # -- venue protocol --------------------------------------------------------------------

    def connect_url(self) -> str:
        return self.url

    @abc.abstractmethod
    def subscribe_messages(self) -> list[str]:
        """Text frames to send after connecting."""

    @abc.abstractmethod
    def on_connect(self) -> None:
        """A new connection: forget every book, they will be rebuilt from fresh snapshots."""

    @abc.abstractmethod
    def handle_frame(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        """Parse one frame into events to publish; ProtocolError for a bad frame,
        SequenceGap or Reconnect when the connection must be re-established."""

    def probe_message(self) -> str | None:
        """A request the venue answers at once, sent after `probe_s` of quiet (None: the venue
        sends heartbeats of its own)."""
        return None

    def untrusted_book(self, symbol: str, reason: str) -> None:
        """A malformed book frame of `symbol` (native) was dropped: that book missed an update.
        By default reconnect (fresh snapshots of every book); venues that can resync one book
        (a new REST snapshot, a resubscribe) do only that."""
        self.reconnect_soon(f"book of {symbol} not trusted after a malformed frame: {reason}")

    def maintain(self, sink: EventSink) -> None:
        """Called after every frame and every `poll_s` without one (snapshot fetches etc.)."""

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run `coro` for the life of the current connection (cancelled when it ends)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self.venue}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def reconnect_soon(self, reason: str) -> None:
        """Ask the read loop to drop the connection and reconnect (fresh snapshots)."""
        self._reconnect_reason = reason

    # -- transport -------------------------------------------------------------------------

    async def run(self, sink: EventSink) -> None:
        self.sink = sink
        attempt = 0
        try:
            while True:
                self.stats.state = FeedState.STARTING
                delivered = await self._connection(sink)
                self.books_stale(self.instruments, self.stats.last_error or "disconnected")
                attempt = 0 if delivered else attempt + 1
                self.stats.state = FeedState.DISCONNECTED
                self.stats.reconnects += 1
                delay = self.config.backoff.delay(attempt)
                log.info(
                    "%s: reconnecting in %.2fs", self.venue, delay, extra={"venue": self.venue}
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.stats.state = FeedState.STOPPED
            raise

    def _fail(self, text: str) -> None:
        text = clip(text)
        self.stats.record_error(text)
        log.warning("%s: %s", self.venue, text, extra={"venue": self.venue})

    async def _connection(self, sink: EventSink) -> bool:
        """One connection's life; returns True if it delivered market data."""
        self._delivered = False
        url = self.connect_url()
        try:
            async with connect(
                url,
                max_size=self.config.max_frame_bytes,
                ping_interval=self.config.ping_interval_s,
                ping_timeout=self.config.ping_timeout_s,
                open_timeout=self.config.open_timeout_s,
                close_timeout=2,
                compression=None,
                ssl=self.config.ssl if url.startswith("wss:") else None,
            ) as conn:
                log.info("%s: connected to %s", self.venue, url, extra={"venue": self.venue})
                self._reconnect_reason = None
                self.on_connect()
                self.stats.state = FeedState.RESYNCING
                for index, message in enumerate(self.subscribe_messages()):
                    if index:
                        await asyncio.sleep(self.config.subscribe_interval_s)
                    await conn.send(message)
                try:
                    await self._read(conn, sink)
                finally:
                    await self._cancel_tasks()
        except asyncio.CancelledError:
            raise
        except SequenceGap as exc:
            self.stats.gaps += 1
            self.stats.resyncs += 1
            self._fail(f"sequence gap, reconnecting for fresh snapshots: {exc}")
        except Exception as exc:
            self._fail(_describe(exc))
        return self._delivered

    async def _read(self, conn: ClientConnection, sink: EventSink) -> None:
        config = self.config
        self._last_data = self._last_frame = self._last_probe = time.monotonic()
        while True:
            raw: str | bytes | None = None
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(config.poll_s):
                    raw = await conn.recv()
            except TimeoutError:
                pass
            now = time.monotonic()
            if raw is not None:
                self._last_frame = now
                events = self.receive(raw, now_ns())
                if events:
                    self._last_data = now
                    self._delivered = True
                    for event in events:
                        sink(event)
            if self._reconnect_reason is not None:
                raise Reconnect(self._reconnect_reason)
            self._check_alive(conn, now)
            if now - self._last_data > config.stall_s:
                raise ConnectError(f"stalled: no market data for {config.stall_s:g}s")
            self.maintain(sink)

    def _check_alive(self, conn: ClientConnection, now: float) -> None:
        config = self.config
        quiet = now - self._last_frame
        if quiet > config.liveness_s:
            raise ConnectError(f"dead: no frame, not even a heartbeat, for {config.liveness_s:g}s")
        if quiet > config.probe_s and now - self._last_probe > config.probe_s:
            self._last_probe = now
            probe = self.probe_message()
            if probe is not None:
                self.spawn(conn.send(probe), "probe")

    def receive(self, raw: str | bytes, ts_recv: int) -> list[MarketEvent]:
        """One frame: raw taps, counters, the venue protocol. A malformed frame is counted,
        logged briefly and dropped; a malformed book frame also resyncs that book."""
        for tap in self.taps:
            tap(self.venue, raw, ts_recv)
        self.stats.record_frame(len(raw), ts_recv)
        try:
            events = self.handle_frame(raw, ts_recv)
        except ProtocolError as exc:
            self.stats.malformed += 1
            self._fail(f"bad frame ignored: {exc}")
            if isinstance(exc, MalformedBook):
                self.untrusted_book(exc.symbol, str(exc))
            return []
        if events:
            self.stats.record_data(events, ts_recv)
        return events

    def mark_data(self, events: list[MarketEvent], ts_recv: int) -> None:
        """Market data arrived outside `handle_frame` (e.g. a REST snapshot)."""
        self._last_data = time.monotonic()
        self._delivered = True
        self.stats.record_data(events, ts_recv)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        rcvd = exc.rcvd
        if rcvd is None:
            return "connection closed without a close frame"
        return f"connection closed by venue: code {rcvd.code} {rcvd.reason!r}".rstrip()
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return f"handshake refused: HTTP {exc.response.status_code}"
    if isinstance(exc, VenueError):
        return clip(str(exc))
    if isinstance(exc, OSError | TimeoutError):
        return clip(f"cannot connect: {type(exc).__name__}: {exc}")
    return clip(f"{type(exc).__name__}: {exc}")
