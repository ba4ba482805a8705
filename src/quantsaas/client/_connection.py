"""One WebSocket connection to /ws carrying every stream of a client, reconnected until it
cannot be.

Protocol (api/stream.py): after the handshake the server sends `info` (or an `error` and a
44xx close when it refuses the credentials); `subscribe` requests carry an `id` that the
`subscribed` / `error` reply echoes; data messages follow. Every subscription the iterators made
is remembered and sent again after a reconnect, and `Streams` reports what was lost meanwhile.

Reconnects use capped exponential backoff with jitter. Before the first connection the client
gives up after `connect_timeout_s` (a wrong URL fails fast); once connected, after `give_up_s`
without a connection (None: never). A handshake refused for the connection limit (429/4429) is
tried again within the same budget: the server may not have seen our previous socket go yet.
Closes that reconnecting cannot mend (revoked key 4001, refused credentials 4401/4403) and
other refused handshakes end every stream with their error instead.

Outgoing requests are paced below the tier's inbound message limit (`inbound_per_s`): a client
that resubscribes many streams at once must not be closed for flooding (1008).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from quantsaas.client._config import StreamConfig
from quantsaas.client._streams import Key, Streams, Watcher
from quantsaas.client.decode import OPTION_CHANNELS, Decoder
from quantsaas.client.errors import (
    FATAL_CLOSES,
    AuthError,
    ClientError,
    ProtocolViolation,
    RateLimited,
    ServerGone,
    UnknownSymbol,
    stream_error,
)
from quantsaas.errors import quote

log = logging.getLogger("quantsaas.client")


@dataclass
class Request:
    """One iterator's subscription, sent again on every connection."""

    channels: list[str]
    symbols: list[str]
    venues: list[str] | None
    watcher: Watcher
    ready: asyncio.Future[None]
    keys: list[Key] = field(default_factory=list)


class Connection:
    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        decoder: Decoder,
        config: StreamConfig,
        refresh: Callable[[], Awaitable[object]],
    ) -> None:
        self.url = url
        self.headers = headers
        self.config = config
        self.streams = Streams(decoder)
        self._refresh = refresh
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self.connected_since = 0.0
        self._requests: dict[int, Request] = {}
        self._wire: dict[int, tuple[int, bool]] = {}
        """Wire id -> (request number, `subscribed` seen)."""
        self._ids = itertools.count(1)
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._sent: collections.deque[float] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self.fatal: ClientError | None = None
        self.ever_connected = False
        self._closing = False
        self._refreshing: asyncio.Task[None] | None = None
        self.down: dict[str, str] = {}
        """Data sources the server says are down (venue or relay -> reason); `status` messages
        and the `info` greeting keep it current."""

    @property
    def connected(self) -> bool:
        return self._ws is not None

    # -- what iterators call -------------------------------------------------------------

    async def subscribe(
        self, channels: list[str], symbols: list[str], venues: list[str] | None, watcher: Watcher
    ) -> int:
        """Subscribe and attach `watcher` to the streams; returns the request number."""
        if self.fatal is not None:
            raise self.fatal
        if self._closing:
            raise ServerGone("the client is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="quantsaas-client-ws")
        number = next(self._ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        request = self._requests[number] = Request(channels, symbols, venues, watcher, future)
        if self._ws is not None:
            self._send_subscribe(number, request)
        try:
            await future
        except BaseException:
            self.release(number)
            raise
        if self._refreshing is not None:  # an instrument the server added since the list was read
            await asyncio.wait([self._refreshing])
        decoder = self.streams.decoder
        unknown = [
            k for k in request.keys if k[0] not in OPTION_CHANNELS and not decoder.knows(*k[1:])
        ]
        if unknown:  # (an option's own book or trades: the listing cannot describe it)
            self.release(number)
            channel, venue, symbol = unknown[0]
            raise UnknownSymbol(f"cannot decode {channel} of {quote(venue)} {quote(symbol)}")
        return number

    def release(self, number: int) -> None:
        """Detach the request's watcher; unsubscribe streams nobody watches any more."""
        request = self._requests.pop(number, None)
        if request is None:
            return
        gone: list[Key] = []
        for key in request.keys:
            stream = self.streams.by_key.get(key)
            if stream is None:
                continue
            with contextlib.suppress(ValueError):
                stream.watchers.remove(request.watcher)
            if not stream.watchers:
                del self.streams.by_key[key]
                gone.append(key)
        if self._ws is not None:
            for channel, venue, symbol in gone:
                self._outbox.put_nowait(_op("unsubscribe", channel, venue, symbol))

    async def close(self) -> None:
        """End the connection for good (the streams' iterators end with ServerGone)."""
        task, self._task = self._task, None
        self._closing = True
        for job in (task, self._refreshing):
            if job is not None and not job.done():
                job.cancel()
                await asyncio.wait([job])
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self.fatal is None:
            self._die(ServerGone("the client was closed"), quietly=True)

    # -- the connection loop ---------------------------------------------------------------

    async def _run(self) -> None:
        config = self.config
        attempt = 0
        down_since = time.monotonic()
        while True:
            try:
                ws = await self._open()
            except RateLimited as exc:  # e.g. our previous connection is not gone yet
                budget = config.give_up_s if self.ever_connected else config.connect_timeout_s
                if budget is not None and time.monotonic() - down_since >= budget:
                    return self._die(exc)
                log.info("connection refused for now (%s); retrying", exc)
                await asyncio.sleep(config.backoff.delay(attempt))
                attempt += 1
                continue
            except ClientError as exc:
                return self._die(exc)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                budget = config.give_up_s if self.ever_connected else config.connect_timeout_s
                if budget is not None and time.monotonic() - down_since >= budget:
                    gone = ServerGone(f"{self.url} unreachable for {budget:g} s: {quote(exc)}")
                    return self._die(gone)
                log.info("connecting to %s failed (%s); retrying", self.url, quote(exc))
                await asyncio.sleep(config.backoff.delay(attempt))
                attempt += 1
                continue
            self.ever_connected = True
            self.connected_since = started = time.monotonic()
            try:
                await self._session(ws)
            except ClientError as exc:
                return self._die(exc)
            finally:
                self._ws = None
                if self._closing:  # cancelled by close(): say goodbye properly
                    await asyncio.shield(ws.close())
            if time.monotonic() - started > 2 * config.backoff.cap_s:
                attempt = 0
            down_since = time.monotonic()
            self.streams.stats.reconnects += 1
            self.streams.reconnecting()
            log.warning("connection to %s lost (%s); reconnecting", self.url, ws.close_code)
            await asyncio.sleep(config.backoff.delay(attempt))
            attempt += 1

    async def _open(self) -> ClientConnection:
        """Connect and read the greeting: `info`, or the refusal (raised as its ClientError)."""
        config = self.config
        try:
            ws = await connect(
                self.url,
                additional_headers=self.headers,
                max_size=None,
                open_timeout=config.connect_timeout_s,
                ping_interval=config.ping_interval_s,
                ping_timeout=config.ping_interval_s,
                close_timeout=2.0,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise AuthError(f"handshake refused with HTTP {status}") from None
            if status == 429:
                raise RateLimited("handshake refused with HTTP 429", None) from None
            raise
        try:
            first = orjson.loads(await asyncio.wait_for(ws.recv(), config.connect_timeout_s))
        except BaseException:
            await ws.close()
            raise
        if isinstance(first, dict) and first.get("type") == "info":
            self.down.clear()
            for source in first.get("down") or ():
                if isinstance(source, dict):
                    self._on_status({**source, "state": "down"})
            return ws
        await ws.close()
        if isinstance(first, dict) and first.get("type") == "error":
            raise stream_error(first)
        raise ProtocolViolation(f"expected the server's info message, got {quote(first)}")

    async def _session(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._outbox = asyncio.Queue()
        self._wire.clear()
        self._sent.clear()
        for number, request in self._requests.items():
            self._send_subscribe(number, request)
        sender = asyncio.create_task(self._send_loop(ws), name="quantsaas-client-send")
        try:
            async for text in ws:
                self._handle(text)
        except websockets.ConnectionClosed:
            pass
        finally:
            sender.cancel()
            await asyncio.wait([sender])  # (never swallows a cancellation of this task)
        fatal = FATAL_CLOSES.get(ws.close_code or 0)
        if fatal is not None:
            raise fatal(f"the server closed the stream: {ws.close_code} {quote(ws.close_reason)}")

    def _die(self, error: ClientError, quietly: bool = False) -> None:
        if not quietly:
            log.error("stream connection ended: %s", error)
        self.fatal = error
        self.streams.fail(error)
        for request in self._requests.values():
            if not request.ready.done():
                request.ready.set_exception(error)
            request.watcher.fail(error)

    # -- sending ---------------------------------------------------------------------------

    def _send_subscribe(self, number: int, request: Request) -> None:
        wire = next(self._ids)
        self._wire[wire] = (number, False)
        message: dict[str, Any] = {
            "op": "subscribe",
            "channels": request.channels,
            "symbols": request.symbols,
            "id": wire,
        }
        if request.venues:
            message["venues"] = request.venues
        self._outbox.put_nowait(message)

    def _resync(self, key: Key) -> None:
        """Unsubscribe and subscribe again: the server answers with a fresh snapshot."""
        self.streams.stats.resyncs += 1
        channel, venue, symbol = key
        self._outbox.put_nowait(_op("unsubscribe", channel, venue, symbol))
        self._outbox.put_nowait(_op("subscribe", channel, venue, symbol))

    async def _send_loop(self, ws: ClientConnection) -> None:
        per_s = max(1, self.config.inbound_per_s - 1)
        sent = self._sent
        while True:
            message = await self._outbox.get()
            now = time.monotonic()
            while sent and now - sent[0] > 1.05:
                sent.popleft()
            if len(sent) >= per_s:
                await asyncio.sleep(1.05 - (now - sent[0]))
                sent.popleft()
            sent.append(time.monotonic())
            try:
                await ws.send(orjson.dumps(message).decode())
            except websockets.ConnectionClosed:
                return  # the reader sees the close too and reconnects

    # -- receiving -------------------------------------------------------------------------

    def _handle(self, text: str | bytes) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            self.streams.stats.malformed += 1
            log.warning("malformed message: %s", quote(text))
            return
        if "seq" in message:
            key = self.streams.on_data(message)
            if key is not None:
                self._resync(key)
            return
        kind = message.get("type")
        if kind == "gap":
            self.streams.on_gap(message)
        elif kind == "subscribed":
            self._on_subscribed(message)
        elif kind == "error":
            self._on_error(message)
        elif kind == "status":
            self._on_status(message)

    def _on_status(self, message: dict[str, Any]) -> None:
        """A data source of the server went down or came back (streams from it pause)."""
        source, reason = str(message.get("source"))[:100], str(message.get("reason"))[:200]
        if message.get("state") == "down":
            self.down[source] = reason
            log.warning("the server reports %s down: %s", source, reason)
        elif self.down.pop(source, None) is not None:
            log.warning("the server reports %s live again", source)

    def _request_of(self, message: dict[str, Any]) -> tuple[int, Request | None]:
        wire = message.get("id")
        number, _ = self._wire.get(wire, (0, False)) if type(wire) is int else (0, False)
        return (wire if type(wire) is int else 0), self._requests.get(number)

    def _on_subscribed(self, message: dict[str, Any]) -> None:
        wire, request = self._request_of(message)
        try:
            keys: list[Key] = [(c, v, s) for c, v, s in message["streams"]]
        except (KeyError, TypeError, ValueError):
            self.streams.stats.malformed += 1
            return
        if request is None:
            return  # a resync's answer, or an iterator that left meanwhile
        self._wire[wire] = (self._wire[wire][0], True)
        for key in keys:
            stream = self.streams.stream(key)
            if request.watcher not in stream.watchers:
                stream.watchers.append(request.watcher)
        request.keys = list(dict.fromkeys([*request.keys, *keys]))
        if not request.ready.done():
            request.ready.set_result(None)
        decoder = self.streams.decoder
        if any(c not in OPTION_CHANNELS and not decoder.knows(v, s) for c, v, s in keys):
            self._refresh_soon()  # e.g. a venue the server added while we were away

    def _refresh_soon(self) -> None:
        """Read the instrument list again, once at a time, without holding up the reader."""
        if self._refreshing is not None and not self._refreshing.done():
            return

        async def refresh() -> None:
            try:
                await self._refresh()
            except ClientError as exc:
                log.warning("cannot read the instrument list again: %s", exc)

        self._refreshing = asyncio.create_task(refresh(), name="quantsaas-client-refresh")

    def _on_error(self, message: dict[str, Any]) -> None:
        wire, request = self._request_of(message)
        error = stream_error(message)
        if request is None:
            log.warning("stream error: %s", error)
            return
        if self._wire[wire][1]:  # part of the request was subscribed, the rest refused
            log.warning("part of a subscription was refused: %s", error)
        elif not request.ready.done():
            request.ready.set_exception(error)
        else:
            request.watcher.fail(error)


def _op(op: str, channel: str, venue: str, symbol: str) -> dict[str, Any]:
    return {"op": op, "channels": [channel], "symbols": [symbol], "venues": [venue]}
