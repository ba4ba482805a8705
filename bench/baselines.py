"""The fan-out baselines bench_fanout.py compares the service with, run by benchserver.py.

Each is the simplest fast broadcast its library offers, on the same event stream as the
service (`benchlib.EventSource` at the offered rate, each event encoded once with the service's
own wire encoder: byte for byte the same messages) and the same control protocol (`rate`,
`stats`, `quit` on stdin, `PORT <n>` first). None has a bus, a per-client queue, a
slow-consumer rule, auth or tiers: they are what a bare server costs.

* `bare-ws`: `websockets.asyncio.server` + `websockets.broadcast` (one frame made per client,
  one `transport.write` per message per client). With `--deflate` it accepts permessage-deflate
  with websockets' defaults (context takeover: compressed per client).
* `picows`: `picows.ws_create_server`, a synchronous `WSTransport.send` to every subscribed
  transport per message (framing in C, one write per message per client). picows has no
  permessage-deflate: `--deflate` is ignored.
* `aiohttp`: `aiohttp.web` with `WebSocketResponse`, a broadcaster task that awaits
  `send_str` for every client per message (the usual aiohttp broadcast). With `--deflate` it
  accepts permessage-deflate (aiohttp's default: context takeover, compressed per client).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Callable, Collection
from typing import Any

import orjson

import benchlib
from quantsaas.channels import BOOK, TICKER, TRADES
from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, Trade
from quantsaas.wire import encode, event_message

INFO = encode({"type": "info"})
SUBSCRIBED = encode({"type": "subscribed"})


class Stream:
    """The benchmark events, encoded once with per-topic seqs, paced at a settable rate."""

    def __init__(self, rate: float, clients: Callable[[], Collection[Any]]) -> None:
        self.source = benchlib.EventSource(benchlib.bench_instruments())
        self.rate = rate
        self.clients = clients
        self.pace_stats = benchlib.PaceStats()
        self.lag = benchlib.LoopLag()
        self.sequences: dict[tuple[str, str, str], int] = {}
        self.published = 0

    def next_text(self, event: MarketEvent | None = None) -> str:
        event = event or self.source.next()
        if isinstance(event, BookDelta | BookSnapshot):
            channel = BOOK
        elif isinstance(event, Trade):
            channel = TRADES
        else:
            channel = TICKER
        topic = (channel, *event.instrument.key)
        seq = self.sequences[topic] = self.sequences.get(topic, 0) + 1
        self.published += 1
        return encode(event_message(channel, seq, event))

    def handle(self, command: str, stop: asyncio.Event) -> str | None:
        if command.startswith("rate "):
            self.rate = float(command.split()[1])
            return "ok"
        if command == "stats":
            worst, over = self.lag.take()
            return json.dumps(
                {
                    "t": time.monotonic(),
                    "published": self.published,
                    "emitted": self.pace_stats.emitted,
                    "skipped": self.pace_stats.skipped,
                    "subscribers": len(self.clients()),
                    "loop_lag_max_ms": round(worst * 1000, 2),
                    "loop_stalls_over_20ms": over,
                }
            )
        if command == "quit":
            stop.set()
        return None

    async def run(self, emit: Callable[[str], None], stop: asyncio.Event) -> None:
        """Snapshots first, then the paced stream, until `stop`."""
        for snapshot in self.source.snapshots():
            emit(self.next_text(snapshot))
        pacer = asyncio.create_task(
            benchlib.pace(lambda: self.rate, lambda: emit(self.next_text()), self.pace_stats)
        )
        lag_task = asyncio.create_task(self.lag.run())
        await stop.wait()
        for task in (pacer, lag_task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


Control = Callable[[asyncio.AbstractEventLoop, Callable[[str], str | None]], None]


async def run_bare_ws(args: argparse.Namespace, control: Control) -> None:
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    clients: set[ServerConnection] = set()
    stream = Stream(args.rate, lambda: clients)
    stop = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        await connection.send(INFO)
        try:
            async for message in connection:
                if orjson.loads(message).get("op") == "subscribe":
                    clients.add(connection)
                    await connection.send(SUBSCRIBED)
        finally:
            clients.discard(connection)

    # picows clients never offer permessage-deflate: without --deflate neither side compresses
    compression = "deflate" if args.deflate else None
    async with serve(
        handler, "127.0.0.1", 0, compression=compression, max_queue=64, backlog=2048
    ) as server:
        print(f"PORT {next(iter(server.sockets)).getsockname()[1]}", flush=True)
        control(asyncio.get_running_loop(), lambda command: stream.handle(command, stop))
        await stream.run(lambda text: websockets.broadcast(clients, text), stop)


async def run_picows(args: argparse.Namespace, control: Control) -> None:
    from picows import (
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        ws_create_server,
    )

    clients: set[WSTransport] = set()
    stream = Stream(args.rate, lambda: clients)
    stop = asyncio.Event()
    text_type = WSMsgType.TEXT

    class Listener(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            transport.send(text_type, INFO.encode())

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            elif frame.msg_type is text_type:
                if orjson.loads(frame.get_payload_as_bytes()).get("op") == "subscribe":
                    clients.add(transport)
                    transport.send(text_type, SUBSCRIBED.encode())

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            clients.discard(transport)

    def factory(request: WSUpgradeRequest) -> WSListener:
        return Listener()

    def broadcast(text: str) -> None:
        payload = text.encode()
        for transport in clients:
            transport.send(text_type, payload)

    server = await ws_create_server(factory, "127.0.0.1", 0, backlog=2048)
    async with server:
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
        control(asyncio.get_running_loop(), lambda command: stream.handle(command, stop))
        await stream.run(broadcast, stop)


async def run_aiohttp(args: argparse.Namespace, control: Control) -> None:
    from aiohttp import WSMsgType, web

    clients: set[web.WebSocketResponse] = set()
    stream = Stream(args.rate, lambda: clients)
    stop = asyncio.Event()
    queued: collections.deque[str] = collections.deque()
    ready = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=bool(args.deflate), max_msg_size=1 << 16)
        await ws.prepare(request)
        await ws.send_str(INFO)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    if orjson.loads(message.data).get("op") == "subscribe":
                        clients.add(ws)
                        await ws.send_str(SUBSCRIBED)
        finally:
            clients.discard(ws)
        return ws

    def emit(text: str) -> None:
        queued.append(text)
        ready.set()

    async def broadcaster() -> None:
        while True:
            await ready.wait()
            ready.clear()
            while queued:
                text = queued.popleft()
                for ws in list(clients):
                    with contextlib.suppress(ConnectionError):
                        await ws.send_str(text)

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    sender = asyncio.create_task(broadcaster())
    try:
        server = site._server
        assert server is not None
        print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[attr-defined]
        control(asyncio.get_running_loop(), lambda command: stream.handle(command, stop))
        await stream.run(emit, stop)
    finally:
        sender.cancel()
        await runner.cleanup()


BASELINES = {"bare-ws": run_bare_ws, "picows": run_picows, "aiohttp": run_aiohttp}
