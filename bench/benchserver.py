"""Benchmark servers, run as subprocesses by bench_fanout.py and bench_http.py.

    .venv/bin/python bench/benchserver.py --kind quantsaas|bare-ws|bare-http [--rate R]
        [--loop asyncio|uvloop] [--log-level warning] [--extra-routes] [--no-record]

* `quantsaas`: the real stack, built as `quantsaas serve` builds it (`Engine` + `create_app` +
  the history recorder, into a temporary data dir, unless `--no-record` + `uvicorn.Server`
  configured by `cli.server_config`, gc tuned like `serve`; `--loop uvloop` is what `serve`
  runs on), but with the benchmark
  `BenchFeed` (four instruments, `--rate` events/s in total) instead of the simulator.
  `--extra-routes` adds two benchmark-only routes: `/_bench/static` (async, returns a
  constant) and `/_bench/market_data_async` (the same work as /api/market_data, `async def`).
* `bare-ws`: the baseline for fan-out: `websockets.asyncio.server` that answers a subscribe
  request, then encodes every `BenchFeed`-equivalent event once (with the service's own wire
  encoder, so messages are byte-for-byte the same shape and size) and sends it to every
  subscribed connection with `websockets.broadcast`. No bus, no per-client queue or task.
* `bare-http`: a bare Starlette app with one async route returning a small constant JSON.

The process prints `PORT <n>` once listening, then obeys lines on stdin:
`rate <events/s>` (answers `ok`), `stats` (answers one JSON line), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import uvicorn

import benchlib
from quantsaas.cli import server_config, tune_gc_for_serving


def _control(loop: asyncio.AbstractEventLoop, handle: Callable[[str], str | None]) -> None:
    """Read commands from stdin in a thread; run each on the loop; print the answer."""

    def worker() -> None:
        for line in sys.stdin:
            command = line.strip()
            if not command:
                continue
            future = asyncio.run_coroutine_threadsafe(_call(handle, command), loop)
            answer = future.result()
            if answer is not None:
                print(answer, flush=True)
            if command == "quit":
                return
        asyncio.run_coroutine_threadsafe(_call(handle, "quit"), loop)

    threading.Thread(target=worker, daemon=True, name="control").start()


async def _call(handle: Callable[[str], str | None], command: str) -> str | None:
    return handle(command)


def lag_stats(lag: benchlib.LoopLag) -> dict[str, float]:
    """Largest event-loop stall (ms) and stalls over 20 ms since the previous `stats`."""
    worst, over = lag.take()
    return {"loop_lag_max_ms": round(worst * 1000, 2), "loop_stalls_over_20ms": over}


async def _run_quantsaas(args: argparse.Namespace) -> None:
    from quantsaas.api.app import create_app
    from quantsaas.api.routes import market_summary
    from quantsaas.config import Settings
    from quantsaas.engine import Engine

    overrides: dict[str, Any] = {"host": "127.0.0.1", "port": 0}
    if "data_dir" in Settings.model_fields:
        overrides["data_dir"] = Path(args.data_dir)
    settings = Settings(**overrides)
    feed = benchlib.BenchFeed(benchlib.bench_instruments(), args.rate)
    engine = Engine([feed])
    lag = benchlib.LoopLag()
    app = create_app(settings, engine)
    if args.record:
        # like cli.serve: record every event into the (here temporary) data dir
        from quantsaas.store import cli as store_cli

        app.state.recorder = store_cli.start_recording(settings, engine)
    if args.extra_routes:

        async def static() -> dict[str, Any]:
            return {"status": "ok", "service": "quant-saas"}

        async def market_data_async() -> dict[str, Any]:
            return {"data": [market_summary(engine, inst) for inst in engine.instruments.values()]}

        app.add_api_route("/_bench/static", static, include_in_schema=False)
        app.add_api_route("/_bench/market_data_async", market_data_async, include_in_schema=False)

    config = server_config(app, settings.model_copy(update={"port": 0}), args.log_level)
    server = uvicorn.Server(config)
    stop = asyncio.Event()

    def handle(command: str) -> str | None:
        if command.startswith("rate "):
            feed.rate = float(command.split()[1])
            return "ok"
        if command == "stats":
            subscriptions = {s for subs in engine.bus._subscribers.values() for s in subs}
            return json.dumps(
                {
                    "t": time.monotonic(),
                    "published": engine.bus.published,
                    "emitted": feed.pace_stats.emitted,
                    "skipped": feed.pace_stats.skipped,
                    "subscribers": len(subscriptions),
                    "dropped": sum(s.dropped for s in subscriptions),
                    "pending": sum(s.pending for s in subscriptions),
                    "rejected_deltas": engine.rejected_deltas,
                    **lag_stats(lag),
                    "resyncs": engine.resyncs_requested,
                }
            )
        if command == "quit":
            server.should_exit = True
            stop.set()
        return None

    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    tune_gc_for_serving()
    lag_task = asyncio.create_task(lag.run())
    port = server.servers[0].sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    _control(asyncio.get_running_loop(), handle)
    await task
    lag_task.cancel()


async def _run_bare_ws(args: argparse.Namespace) -> None:
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    from quantsaas.api.wire import encode, event_message
    from quantsaas.engine import BOOK, TICKER, TRADES
    from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, Trade

    source = benchlib.EventSource(benchlib.bench_instruments())
    lag = benchlib.LoopLag()
    clients: set[ServerConnection] = set()
    rate = args.rate
    pace_stats = benchlib.PaceStats()
    sequences: dict[tuple[str, str, str], int] = {}
    published = 0

    async def handler(connection: ServerConnection) -> None:
        await connection.send(encode({"type": "info"}))
        try:
            async for message in connection:
                request = orjson.loads(message)
                if request.get("op") == "subscribe":
                    clients.add(connection)
                    await connection.send(encode({"type": "subscribed"}))
        finally:
            clients.discard(connection)

    def broadcast(event: MarketEvent) -> None:
        nonlocal published
        if isinstance(event, BookDelta | BookSnapshot):
            channel = BOOK
        elif isinstance(event, Trade):
            channel = TRADES
        else:
            channel = TICKER
        topic = (channel, *event.instrument.key)
        seq = sequences[topic] = sequences.get(topic, 0) + 1
        published += 1
        websockets.broadcast(clients, encode(event_message(channel, seq, event)))

    def emit() -> None:
        broadcast(source.next())

    stop = asyncio.Event()

    def handle(command: str) -> str | None:
        nonlocal rate
        if command.startswith("rate "):
            rate = float(command.split()[1])
            return "ok"
        if command == "stats":
            buffered = sum(c.transport.get_write_buffer_size() for c in clients)
            return json.dumps(
                {
                    "t": time.monotonic(),
                    "published": published,
                    "emitted": pace_stats.emitted,
                    "skipped": pace_stats.skipped,
                    "subscribers": len(clients),
                    "write_buffer_bytes": buffered,
                    **lag_stats(lag),
                }
            )
        if command == "quit":
            stop.set()
        return None

    # like uvicorn (ws_per_message_deflate=True) accept permessage-deflate only with --deflate:
    # picows clients never offer it, so by default neither server compresses
    compression = "deflate" if args.deflate else None
    async with serve(
        handler, "127.0.0.1", 0, compression=compression, max_queue=64, backlog=2048
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        _control(asyncio.get_running_loop(), handle)
        for snapshot in source.snapshots():
            broadcast(snapshot)
        pacer = asyncio.create_task(benchlib.pace(lambda: rate, emit, pace_stats))
        lag_task = asyncio.create_task(lag.run())
        await stop.wait()
        pacer.cancel()
        lag_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pacer


async def _run_bare_http(args: argparse.Namespace) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def static(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "quant-saas"})

    app = Starlette(routes=[Route("/static", static)])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level=args.log_level)
    server = uvicorn.Server(config)

    def handle(command: str) -> str | None:
        if command == "quit":
            server.should_exit = True
        return "{}" if command == "stats" else None

    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    print(f"PORT {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
    _control(asyncio.get_running_loop(), handle)
    await task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", choices=["quantsaas", "bare-ws", "bare-http"], required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second in total")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--extra-routes", action="store_true")
    parser.add_argument("--deflate", action="store_true", help="bare-ws: accept compression")
    parser.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="quantsaas: do not start the history recorder that `serve` starts",
    )
    args = parser.parse_args()
    benchlib.raise_fd_limit()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    runner = {"quantsaas": _run_quantsaas, "bare-ws": _run_bare_ws, "bare-http": _run_bare_http}
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    args.data_dir = tempfile.mkdtemp(prefix="quantsaas-bench-")
    try:
        with asyncio.Runner(loop_factory=factory) as loop_runner:
            loop_runner.run(runner[args.kind](args))
    finally:
        shutil.rmtree(args.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
