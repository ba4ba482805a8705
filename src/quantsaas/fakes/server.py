"""What every fake exchange shares: the WebSocket server, client bookkeeping, fault names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Response

from quantsaas.fakes.market import SimMarket, SymbolTick
from quantsaas.fakes.tls import FakeTls

log = logging.getLogger(__name__)

FAULTS = ("drop", "gap", "stale-snapshot", "malformed", "big-snapshot", "shutdown", "silent")
"""drop: cut every connection without a close frame; gap: skip sequence numbers once;
stale-snapshot: the next snapshot is older than the stream; malformed: one invalid JSON frame;
big-snapshot: the next snapshot is padded beyond 2 MiB; shutdown: announce shutdown, then close;
silent: stop sending market data on the current connections (pings are still answered).
stale-snapshot and big-snapshot fire on their own: they arm the next snapshots and close every
connection (1001), so each client reconnects and must take a new snapshot, which is the bad one."""

BIG_BYTES = 2 * 1024 * 1024 + 4096


@dataclass(eq=False)
class Client:
    conn: ServerConnection
    streams: set[str] = field(default_factory=set)
    combined: bool = True
    silent: bool = False
    sent: int = 0
    products: set[str] = field(default_factory=set)
    sequence_num: int = -1
    """Coinbase Advanced: the last envelope sequence number sent on this connection."""
    replaying: bool = False
    """The replay file has started on this connection (it starts once)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while frames are built and sent, so numbered frames leave in order."""


class FakeServer:
    """Owns the listening socket, the connected clients and background tasks."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.server: Server | None = None
        self.port = 0
        self.faults_fired: list[str] = []
        self.paused = False
        self.tls: FakeTls | None = None
        """Set before `start` to serve wss:// and https:// with this certificate."""
        self.replay_path: Path | None = None
        self.replay_per_s = 200.0
        self.replays_done = 0
        """Connections that were sent the whole replay file."""
        self._armed: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen (port 0: a free one) and start the venue's background tasks; the port."""
        raise NotImplementedError

    @property
    def scheme(self) -> str:
        """`wss` with TLS, else `ws` (the REST side is `https`/`http` alike)."""
        return "wss" if self.tls is not None else "ws"

    async def listen(
        self,
        handler: Callable[[ServerConnection], Awaitable[None]],
        host: str,
        port: int,
        **options: Any,
    ) -> int:
        """Start the WebSocket server (1 MiB frames, no compression; TLS when `self.tls` is
        set) and return its port."""
        tls = None if self.tls is None else self.tls.server
        self.server = await serve(
            handler, host, port, **options, max_size=1 << 20, compression=None, ssl=tls
        )
        self.port = self.server.sockets[0].getsockname()[1] if self.server.sockets else port
        return self.port

    @contextlib.asynccontextmanager
    async def connected(self, client: Client) -> AsyncIterator[None]:
        """Track `client` while its connection lasts; a closed or aborted connection just ends."""
        self.clients.add(client)
        try:
            yield
        except Exception:  # connection closed or aborted
            return
        finally:
            self.clients.discard(client)

    async def answer(
        self, client: Client, replies: Callable[[Any, str | bytes], Iterable[str]]
    ) -> None:
        """Answer each inbound message with `replies(client, message)`, under the client lock."""
        async for message in client.conn:
            async with client.lock:
                for reply in replies(client, message):
                    await self.send(client, reply, market=False)

    def begin_replay(self, client: Client) -> None:
        """Start sending the replay file to `client`, once per connection. Each venue calls this
        where the real one starts sending data (at connect for streams named in the URL, else
        at the first subscribe); nothing of the fake's own is sent in between or mixed in."""
        if self.replay_path is not None and not client.replaying:
            client.replaying = True
            self.spawn(self._replay(client, self.replay_path, self.replay_per_s))

    async def _replay(self, client: Client, path: Path, per_s: float) -> None:
        """Send a recorded file verbatim, one non-blank line per frame, `per_s` lines a second."""
        pause = 1.0 / per_s
        for line in path.read_bytes().splitlines():
            if line.strip():
                await self.send(client, line.decode())
                await asyncio.sleep(pause)
        self.replays_done += 1

    def arm_and_reconnect(self, fault: str) -> None:
        """Make the next snapshots bad (one per connected client, at least one) and close every
        connection, so the fault fires without anything else forcing a resnapshot."""
        self._armed[fault] = self._armed.get(fault, 0) + max(1, len(self.clients))
        self.spawn(self.close_all(1001, f"fault {fault}: reconnect for a new snapshot"))

    def take_armed(self, fault: str) -> bool:
        """True (once per arming) if the snapshot being built must carry `fault`."""
        left = self._armed.get(fault, 0)
        if left <= 0:
            return False
        self._armed[fault] = left - 1
        return True

    def shared_fault(self, fault: str, malformed: str) -> bool:
        """Fire `drop`, `malformed` (sending `malformed`), `shutdown` (close 1001) or `silent`;
        False for any other fault, which the venue handles itself."""
        if fault == "drop":
            self.drop_all()
        elif fault == "malformed":
            for client in list(self.clients):
                self.spawn(self.send(client, malformed, market=False))
        elif fault == "shutdown":
            self.spawn(self.close_all(1001, "going away"))
        elif fault == "silent":
            for client in self.clients:
                client.silent = True
        else:
            return False
        return True

    async def ticks(
        self, market: SimMarket, interval: float
    ) -> AsyncIterator[dict[str, SymbolTick]]:
        """Advance `market` by `interval` every `interval` seconds, except while `paused`."""
        while True:
            await asyncio.sleep(interval)
            if not self.paused:
                yield market.advance(interval)

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send(self, client: Client, text: str | bytes, market: bool = True) -> None:
        if market and client.silent:
            return
        with contextlib.suppress(Exception):
            await client.conn.send(text)
            client.sent += 1

    def drop_all(self) -> None:
        """Cut every TCP connection without a close frame (a network failure)."""
        for client in list(self.clients):
            transport = client.conn.transport
            if transport is not None:
                transport.abort()

    async def close_all(self, code: int, reason: str, only: list[Client] | None = None) -> None:
        for client in list(self.clients) if only is None else only:
            with contextlib.suppress(Exception):
                await client.conn.close(code, reason)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 5)
            self.server = None


def json_response(conn: ServerConnection, status: int, body: bytes) -> Response:
    """An HTTP response carrying `body` as application/json."""
    response = conn.respond(status, "")
    response.body = body
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    response.headers["Content-Type"] = "application/json"
    response.headers["Content-Length"] = str(len(body))
    return response
