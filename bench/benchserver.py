"""Benchmark servers, run as subprocesses by bench_fanout.py, bench_http.py and bench_auth.py.

    .venv/bin/python bench/benchserver.py --kind quantsaas|bare-ws|picows|aiohttp|bare-http
        [--rate R] [--loop asyncio|uvloop] [--log-level warning] [--extra-routes] [--no-record]
        [--access open|key|off|off-override] [--rate-limit-bus memory|redis://...]

* `quantsaas`: the real stack, built as `quantsaas serve` builds it (`Engine` + `create_app` +
  the history recorder, into a temporary data dir, unless `--no-record` + `uvicorn.Server`
  configured by `cli.server_config`, gc tuned like `serve`; `--loop uvloop` is what `serve`
  runs on), but with the benchmark
  `BenchFeed` (four instruments, `--rate` events/s in total) instead of the simulator.
  `--extra-routes` adds two benchmark-only routes: `/_bench/static` (async, returns a
  constant) and `/_bench/market_data_async` (the same work as /api/market_data, `async def`).
  Accounts live in a throw-away SQLite database in the temporary data dir, with no first-start
  admin (`bootstrap_admin` off) and the tiers of bench/bench_tiers.toml: one tier, `bench`,
  with limits far above any benchmark. `--access` says who may call:
  - `open` (default): anonymous callers get the `bench` tier (setting `anonymous_tier`), so
    every request still goes through `guard_request` and the rate limiter;
  - `key`: closed, as in production; at startup the server creates a user on the `bench` tier
    and an API key, and prints it on the PORT line (`PORT <n> KEY <key>`) for the client to
    send as `X-API-Key`;
  - `off`: the baseline without access control: no credential lookup, no rate limit, no
    rate-limit headers; every caller is a fixed `bench`-tier principal, so routes do the same
    work as for a key holder (the live, not the delayed, /api/market_data). The benchmarked
    routes are marked unlimited in the access table (guard_request returns at once, as for
    /health) and a one-line ASGI middleware names the principal in place of
    LimitHeadersMiddleware (`without_access_control`); `off-override` does it with
    `app.dependency_overrides[guard_request]` instead, which FastAPI makes slower per request.
    Both are for HTTP only: /ws authenticates by itself and refuses anonymous callers there.
  `--rate-limit-bus memory|redis://...` sets `rate_limit_bus` (where the limiter keeps state).
* `bare-ws`, `picows`, `aiohttp`: the fan-out baselines (bench/baselines.py): the same event
  stream, each event encoded once with the service's own wire encoder and broadcast with the
  library's simplest fast path. No bus, no per-client queue or task.
* `bare-http`: a bare Starlette app with one async route returning a small constant JSON.

The process prints `PORT <n>` (`PORT <n> KEY <key>` with `--access key`) once
listening, then obeys lines on stdin:
`rate <events/s>` (answers `ok`), `stats` (answers one JSON line), `quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, cast

import uvicorn
from fastapi import FastAPI, Request
from starlette.middleware import Middleware

import benchlib
from baselines import BASELINES
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


BENCH_TIERS = Path(__file__).resolve().parent / "bench_tiers.toml"
BENCH_TIER = "bench"
BENCH_EMAIL = "bench@example.com"
ACCESS_MODES = ("open", "key", "off", "off-override")
BENCHMARKED_ROUTES = ("/api/market_data", "/_bench/static", "/_bench/market_data_async")


class BenchPrincipal:
    """ASGI middleware of `--access off`: every HTTP caller is the fixed principal (what
    guard_request would have put in the request state), nothing else."""

    def __init__(self, app: Any, principal: Any) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["principal"] = self.principal
        await self.app(scope, receive, send)


def unlimit_routes() -> Callable[[], None]:
    """Mark BENCHMARKED_ROUTES unlimited in the (process-wide) access table, so guard_request
    returns as soon as it has looked up their rule; returns what puts the table back."""
    from quantsaas.api import access

    routes = cast(dict[str, access.Access], access.ROUTES)
    saved = {route: routes.get(route) for route in BENCHMARKED_ROUTES}
    routes.update(dict.fromkeys(BENCHMARKED_ROUTES, access.Access(public=True, limited=False)))

    def restore() -> None:
        for route, rule in saved.items():
            if rule is None:
                routes.pop(route, None)
            else:
                routes[route] = rule

    return restore


def without_access_control(app: FastAPI, how: str = "off") -> Callable[[], None]:
    """`--access off`: no credential lookup, no rate limit, no rate-limit headers; every caller
    is a fixed `bench`-tier principal, so the routes answer as they do for a key holder (the
    live /api/market_data, not the anonymous delayed one).

    `off`: the access table marks the benchmarked routes unlimited (like the /health probes),
    so guard_request returns after looking up the route's rule, and LimitHeadersMiddleware is
    replaced by `BenchPrincipal`. `off-override`: `app.dependency_overrides[guard_request]` = a
    no-op naming the principal, LimitHeadersMiddleware left out. Not the default: while any
    override is set, FastAPI rebuilds the overridden dependency (`get_dependant`, signature
    inspection) on every request, a cost of its own that a baseline should not carry
    (bench/README.md, bench_auth.py). Returns what undoes the access-table change."""
    from quantsaas.accounts.views import Principal
    from quantsaas.api.auth import LimitHeadersMiddleware, guard_request

    principal = Principal.anonymous(BENCH_TIER)
    # the middleware stack is built on the first request: it can still be changed
    limit_headers: Any = LimitHeadersMiddleware
    kept = [m for m in app.user_middleware if m.cls is not limit_headers]
    if how == "off-override":

        async def no_guard(request: Request) -> None:
            request.state.principal = principal

        app.dependency_overrides[guard_request] = no_guard
        app.user_middleware = kept
        return lambda: None
    at = next(i for i, m in enumerate(app.user_middleware) if m.cls is limit_headers)
    app.user_middleware[at] = Middleware(BenchPrincipal, principal=principal)
    return unlimit_routes()


async def bench_key(app: FastAPI) -> str:
    """`--access key`: a user on the bench tier and an API key of theirs (its full text)."""
    from quantsaas.api.auth import Guard

    guard: Guard = app.state.guard
    user = await guard.accounts.add_user(BENCH_EMAIL, secrets.token_urlsafe(24), tier=BENCH_TIER)
    key, _ = await guard.accounts.create_key(user.id, "bench")
    return key


async def _run_quantsaas(args: argparse.Namespace) -> None:
    from quantsaas import runtime
    from quantsaas.api import access
    from quantsaas.api.app import create_app
    from quantsaas.api.routes import market_summary
    from quantsaas.config import Settings

    data_dir = Path(args.data_dir)
    settings = Settings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        accounts_url=f"sqlite+aiosqlite:///{data_dir.resolve()}/accounts.db",
        tiers_file=BENCH_TIERS,
        bootstrap_admin=False,
        anonymous_tier=BENCH_TIER if args.access == "open" else None,
        rate_limit_bus=args.rate_limit_bus,
    )
    feed = benchlib.BenchFeed(benchlib.bench_instruments(), args.rate)
    # like cli.serve: the composition root builds it, recording into the (temporary) data dir
    built = runtime.build(settings, feeds=[feed], record=bool(args.record))
    engine = built.engine
    assert engine is not None
    lag = benchlib.LoopLag()
    app = create_app(built)
    if args.access.startswith("off"):
        without_access_control(app, args.access)
    if args.extra_routes:

        async def static() -> dict[str, Any]:
            return {"status": "ok", "service": "quant-saas"}

        async def market_data_async() -> dict[str, Any]:
            known = built.read_model.instruments().values()
            return {"data": [market_summary(built.read_model, inst) for inst in known]}

        app.add_api_route("/_bench/static", static, include_in_schema=False)
        app.add_api_route("/_bench/market_data_async", market_data_async, include_in_schema=False)
        # public like /api/market_data (a route missing from the access table needs a user),
        # unless `--access off` made them unlimited already
        routes = cast(dict[str, access.Access], access.ROUTES)
        routes.setdefault("/_bench/static", access.PUBLIC)
        routes.setdefault("/_bench/market_data_async", access.PUBLIC)

    config = server_config(app, settings.model_copy(update={"port": 0}), args.log_level)
    server = uvicorn.Server(config)
    stop = asyncio.Event()

    def handle(command: str) -> str | None:
        if command.startswith("rate "):
            feed.rate = float(command.split()[1])
            return "ok"
        if command == "stats":
            subscriptions = {s for subs in built.bus._subscribers.values() for s in subs}
            return json.dumps(
                {
                    "t": time.monotonic(),
                    "published": built.bus.published,
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
    key = await bench_key(app) if args.access == "key" else None
    print(f"PORT {port}" + (f" KEY {key}" if key else ""), flush=True)
    _control(asyncio.get_running_loop(), handle)
    await task
    lag_task.cancel()


async def _run_bare_http(args: argparse.Namespace) -> None:
    from starlette.applications import Starlette
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
    parser.add_argument("--kind", choices=["quantsaas", "bare-http", *BASELINES], required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second in total")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--extra-routes", action="store_true")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="bare-ws, aiohttp: accept permessage-deflate (quantsaas always does, as serve)",
    )
    parser.add_argument(
        "--access",
        choices=ACCESS_MODES,
        default="open",
        help="quantsaas: open (anonymous callers get the bench tier), key (closed; prints an "
        "API key), off (no auth, no rate limit)",
    )
    parser.add_argument(
        "--rate-limit-bus", default="memory", help="quantsaas: memory or redis://host:port/db"
    )
    parser.add_argument(
        "--no-record",
        dest="record",
        action="store_false",
        help="quantsaas: do not start the history recorder that `serve` starts",
    )
    args = parser.parse_args()
    benchlib.raise_fd_limit()
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    runner: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, None]]] = {
        "quantsaas": _run_quantsaas,
        "bare-http": _run_bare_http,
    }
    for kind, baseline in BASELINES.items():
        runner[kind] = functools.partial(baseline, control=_control)
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
