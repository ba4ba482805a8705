"""What every fake exchange shares: the WebSocket server, client bookkeeping, fault names."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection

log = logging.getLogger(__name__)

FAULTS = ("drop", "gap", "stale-snapshot", "malformed", "big-snapshot", "shutdown", "silent")
"""drop: cut every connection without a close frame; gap: skip sequence numbers once;
stale-snapshot: the next snapshot is older than the stream; malformed: one invalid JSON frame;
big-snapshot: the next snapshot is padded beyond 2 MiB; shutdown: announce shutdown, then close;
silent: stop sending market data on the current connections (pings are still answered)."""

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
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while frames are built and sent, so numbered frames leave in order."""


class FakeServer:
    """Owns the listening socket, the connected clients and background tasks."""

    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.server: Server | None = None
        self.port = 0
        self.faults_fired: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

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
