"""The in-process half of bench_auth.py (see its docstring and bench/README.md): apps built as
benchserver.py builds them (lifespan entered), measured in this process by the CPU time of this
thread, medians of interleaved repeats:

* **whole request**: GET /api/market_data through each app's whole ASGI stack (middlewares,
  routing, dependencies, route, JSON), without uvicorn and sockets;
* **one guard_request call** (µs) on a fresh Request for /api/market_data (open / key /
  key+redis), against the `off-override` no-op on the same fresh Requests; `--profile` adds a
  cProfile of the key variant's guard calls.

Also the route and the round helpers both halves of the benchmark use (`ROUTE`, `rotated`,
`med`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import pstats
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request

import benchlib

ROUTE = "/api/market_data"
T = TypeVar("T")


def rotated(round_index: int, variants: list[T]) -> list[T]:
    """The list turned left by `round_index`: each round starts with another variant."""
    shift = round_index % len(variants)
    return variants[shift:] + variants[:shift]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------------- in-process guard µs


@contextlib.asynccontextmanager
async def built_app(access: str, rate_limit_bus: str, directory: Path) -> AsyncIterator[Any]:
    """An app as benchserver.py builds it (lifespan entered), with a `bench` API key in
    `app.state.bench_key` when `access` is key."""
    from benchserver import (
        BENCH_TIER,
        BENCH_TIERS,
        bench_key,
        unlimit_routes,
        without_access_control,
    )
    from quantsaas import runtime
    from quantsaas.api.app import create_app
    from quantsaas.config import Settings

    settings = Settings(
        data_dir=directory,
        accounts_url=f"sqlite+aiosqlite:///{directory.resolve()}/accounts-{secrets.token_hex(4)}.db",
        tiers_file=BENCH_TIERS,
        bootstrap_admin=False,
        anonymous_tier=BENCH_TIER if access == "open" else None,
        rate_limit_bus=rate_limit_bus,
        record=False,
    )
    feeds = [benchlib.BenchFeed(benchlib.bench_instruments(), 50.0)]
    app = create_app(runtime.build(settings, feeds=feeds))
    # `off` changes the access table of the whole process: `bench_enter` does it while `off`
    # is measured (and returns what undoes it)
    app.state.bench_enter = lambda: None
    if access.startswith("off"):
        without_access_control(app, access)()
        if access == "off":
            app.state.bench_enter = unlimit_routes
    async with app.router.lifespan_context(app):
        app.state.bench_key = await bench_key(app) if access == "key" else None
        yield app


async def request_factory(app: Any, key: str | None) -> Callable[[], Any]:
    """Fresh Requests for GET /api/market_data as the app's router hands them to the guard
    (`scope["route"]` is taken from one real request through the app). `Request` is imported
    at module level: FastAPI resolves the string annotation of `capture` in module globals."""
    import httpx

    from quantsaas.api.auth import guard_request

    seen: dict[str, Any] = {}

    async def capture(request: Request) -> None:
        seen["route"] = request.scope.get("route")

    app.dependency_overrides[guard_request] = capture
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await client.get(ROUTE)
    finally:
        del app.dependency_overrides[guard_request]
    route = seen["route"]
    if getattr(route, "path", None) != ROUTE:
        raise RuntimeError(f"no route {ROUTE} found: {route!r}")
    base = {
        **http_scope(key),
        "app": app,
        "route": route,
        "path_params": {},
    }

    def make() -> Any:
        return Request({**base, "state": {}})

    return make


def http_scope(key: str | None) -> dict[str, Any]:
    """The ASGI scope of GET ROUTE as uvicorn builds it for the load generator's requests."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"Python/3.11 aiohttp/3"),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
    ]
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": ROUTE,
        "raw_path": ROUTE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def per_call(one: Callable[[], Awaitable[None]], calls: int) -> tuple[float, float]:
    """(wall µs, CPU µs of this thread) per `await one()`."""
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    for _ in range(calls):
        await one()
    wall1, cpu1 = time.perf_counter(), time.thread_time()
    return (wall1 - wall0) / calls * 1e6, (cpu1 - cpu0) / calls * 1e6


def asgi_request(app: Any, key: str | None) -> Callable[[], Awaitable[None]]:
    """One whole GET /api/market_data through the app's ASGI stack (middlewares, routing, the
    guard, the route, the JSON body), as uvicorn would call it, minus HTTP parsing and sockets."""
    base = http_scope(key)
    request_message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{ROUTE} answered {message['status']}")

    async def one() -> None:
        await app({**base, "state": {}}, receive, send)

    return one


async def in_process(opts: argparse.Namespace, redis_url: str) -> None:
    """The noise-free views: a whole request through each app in process, and one
    `guard_request` call on a fresh Request against the `off` no-op."""
    from benchserver import BENCH_TIER
    from quantsaas.accounts.views import Principal
    from quantsaas.api.auth import guard_request

    principal = Principal.anonymous(BENCH_TIER)

    async def no_guard(request: Any) -> None:  # the `off` server's override
        request.state.principal = principal

    specs = (
        ("off", "off", "memory"),
        ("off-override", "off-override", "memory"),
        ("open", "open", "memory"),
        ("key", "key", "memory"),
        ("key+redis", "key", redis_url),
    )
    with tempfile.TemporaryDirectory(prefix="quantsaas-bench-auth-") as tmp:
        async with contextlib.AsyncExitStack() as stack:
            apps = {
                name: await stack.enter_async_context(built_app(access, bus, Path(tmp)))
                for name, access, bus in specs
            }
            await asyncio.sleep(0.5)  # some trades and deltas in the books
            calls = opts.guard_calls // 5
            print(
                f"\nin process, whole request: GET {ROUTE} through each app's ASGI stack "
                f"({calls:,} calls, median of {opts.repeats} interleaved repeats; no uvicorn, "
                "no sockets, so the ratio is an upper bound of the served overhead)"
            )
            print(f"  {'':<10} {'wall µs':>8} {'CPU µs':>8} {'CPU x off':>10} {'+CPU µs':>8}")
            whole_runs: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
            senders = {name: asgi_request(app, app.state.bench_key) for name, app in apps.items()}
            for name, one in senders.items():
                restore = apps[name].state.bench_enter()
                await per_call(one, min(calls, 500))  # warm
                if restore is not None:
                    restore()
            for index in range(opts.repeats):
                for name in rotated(index, list(senders)):
                    restore = apps[name].state.bench_enter()  # `off`: unlimit its routes
                    whole_runs[name].append(await per_call(senders[name], calls))
                    if restore is not None:
                        restore()
            off = whole_runs["off"]
            for name, runs in whole_runs.items():
                ratio = med([runs[i][1] / off[i][1] for i in range(opts.repeats)])
                extra = med([runs[i][1] - off[i][1] for i in range(opts.repeats)])
                print(
                    f"  {name:<10} {med([r[0] for r in runs]):8.1f} "
                    f"{med([r[1] for r in runs]):8.1f} {ratio:10.3f} {extra:8.1f}"
                )

            print(
                f"\nin process, one guard_request call on a fresh Request for {ROUTE} "
                f"(median of {opts.repeats} interleaved repeats; baseline: the `off` no-op on "
                "the same fresh Requests)"
            )
            print(
                f"  {'':<10} {'calls':>7} {'guard wall µs':>14} {'guard CPU µs':>13} "
                f"{'no-op µs':>9} {'guard cost CPU µs':>18}"
            )
            profile_args: tuple[Callable[[], Any], int] = (lambda: None, 0)
            for name in ("open", "key", "key+redis"):
                app = apps[name]
                make = await request_factory(app, app.state.bench_key)
                n = opts.guard_calls if name != "key+redis" else max(opts.guard_calls // 20, 200)
                guarded = lambda make=make: guard_request(make())  # noqa: E731
                unguarded = lambda make=make: no_guard(make())  # noqa: E731
                await per_call(guarded, min(n, 1000))  # warm
                ours: list[tuple[float, float]] = []
                base: list[tuple[float, float]] = []
                for _ in range(opts.repeats):
                    ours.append(await per_call(guarded, n))
                    base.append(await per_call(unguarded, n))
                wall_us = med([r[0] for r in ours])
                cpu_us = med([r[1] for r in ours])
                noop_us = med([r[1] for r in base])
                print(
                    f"  {name:<10} {n:7,} {wall_us:14.2f} {cpu_us:13.2f} {noop_us:9.2f} "
                    f"{cpu_us - noop_us:18.2f}"
                )
                if name == "key":
                    profile_args = (make, n)
            if opts.profile:
                profile_guard(guard_request, *profile_args)


def profile_guard(
    guard: Callable[[Any], Coroutine[Any, Any, None]], make: Callable[[], Any], calls: int
) -> None:
    """cProfile of `calls` guard calls driven without an event loop (no await suspends on the
    memory limiter and a cached key), top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        coroutine = guard(make())
        try:
            coroutine.send(None)
        except StopIteration:
            pass
        else:
            raise RuntimeError("the guard suspended: profile it on a loop instead")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(22)
    print(f"\n  cProfile of {calls:,} key guard calls (with a fresh Request each), by own time:")
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))
