"""Cost of access control (auth + rate limit) per request on /api/market_data, against no
access control at all, measured side by side in one run (issue 8: target < 10% overhead).

    .venv/bin/python bench/bench_auth.py [--quick] [--repeats 7] [--connections 16]
        [--rate 500] [--duration S] [--guard-calls N] [--profile]

Four servers (bench/benchserver.py `--kind quantsaas`: Engine + create_app + uvicorn on uvloop,
the benchmark feed at 200 events/s, no recorder, log level warning so no access log), started
once and kept running for the whole run; they differ only in access control:

* `off`: the baseline, no auth and no rate limit: the caller is a fixed `bench`-tier principal
  (so the route does the same work: the live summary of the four instruments, ~1.6 kB),
  guard_request returns as soon as it has looked up the route's rule (the route is marked
  unlimited, like /health) and LimitHeadersMiddleware is replaced by a one-line ASGI
  middleware naming the principal (benchserver.without_access_control). Not
  `app.dependency_overrides[guard_request]`: while an override is set, FastAPI rebuilds the
  dependency (`get_dependant`) on every request, ~30-45 µs that would hide the guard's cost
  (the in-process view below shows it as `off-override`);
* `open`: anonymous callers get the `bench` tier (`anonymous_tier`), memory limiter, per IP;
* `key`: closed as in production; every request sends `X-API-Key` of a `bench`-tier user;
  memory limiter, per key;
* `key+redis`: the same with `rate_limit_bus` = a real redis-server started here (the GCRA Lua
  script, one EVALSHA round trip per request).
The `bench` tier (bench/bench_tiers.toml) allows 1e9 requests per 1,000 s: never refused.

Load: the aiohttp-on-uvloop load generator of bench_http.py, in its own process:
1. **throughput**, closed loop: `--connections` keep-alive connections, each sending its next
   GET as soon as the previous answer is read, for a warm-up then `--duration` s; figures:
   requests/s answered, and the server's CPU time per request (µs, from /proc over exactly the
   measured window): the CPU figure is the one that holds up when other jobs share the cores;
2. **latency**, open loop at a fixed `--rate` (bench_http.load: a schedule that does not wait
   for answers, latency from the scheduled start): p50 and p99.
Each phase runs `--repeats` rounds; every round measures all four servers, in an order rotated
each round, so machine noise is spread over all variants alike. Every figure is given as a
ratio against `off` from the same round; the summary shows medians over rounds. The overhead
is 1 - throughput ratio (and CPU per request ratio - 1). "other" is CPU used meanwhile by the
rest of the machine, in cores (other people's jobs): rounds with a lot of it are less reliable.

Then two views in this process (bench/bench_auth_inprocess.py), on apps built the same way
(lifespan entered), timed by the CPU time of this thread (not disturbed by other jobs as wall
time is), medians of interleaved repeats:
* **whole request**: GET /api/market_data through each app's whole ASGI stack (middlewares,
  routing, dependencies, route, JSON), without uvicorn and sockets; the ratio to `off` is
  therefore an upper bound of the served overhead;
* **one guard_request call** (µs) on a fresh Request for /api/market_data (open / key /
  key+redis), against the `off-override` no-op on the same fresh Requests. `--profile` adds a
  cProfile of the key variant's guard calls (where the time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchlib
from bench_auth_inprocess import ROUTE, in_process, med, rotated
from bench_http import HERE, Result, Server, get_status, load
from bench_ratelimit import redis_server

VARIANTS = ("off", "open", "key", "key+redis")
TARGET_OVERHEAD = 0.10
NOISY_CORES = 0.3
CPUS = os.cpu_count() or 1


# ----------------------------------------------------------------------- closed-loop load role


async def closed_main(opts: argparse.Namespace) -> None:
    """Closed loop: `connections` workers, each sending its next GET once the last is read.
    Prints `WARM` when the warm-up ends, then one JSON line with the measured window."""
    import aiohttp

    headers = dict(header.split(":", 1) for header in opts.header)
    connector = aiohttp.TCPConnector(limit=opts.connections)
    timeout = aiohttp.ClientTimeout(total=10)
    clock = time.perf_counter
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    measuring = False
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        stop_at = clock() + opts.warm + opts.duration

        async def worker() -> None:
            nonlocal errors
            while clock() < stop_at:
                began = clock()
                status = await get_status(session, opts.url)
                if status is None:
                    errors += 1
                    continue
                if measuring:
                    latencies.append(clock() - began)
                    statuses[status] = statuses.get(status, 0) + 1

        workers = [asyncio.create_task(worker()) for _ in range(opts.connections)]
        await asyncio.sleep(opts.warm)
        print("WARM", flush=True)
        measuring, cpu0, began = True, time.process_time(), clock()
        await asyncio.sleep(opts.duration)
        measuring, cpu1, span = False, time.process_time(), clock() - began
        await asyncio.gather(*workers)
    latencies.sort()
    result = {
        "requests": len(latencies),
        "seconds": span,
        "errors": errors,
        "statuses": statuses,
        "p50_ms": benchlib.percentile(latencies, 50) * 1000,
        "p99_ms": benchlib.percentile(latencies, 99) * 1000,
        "cpu_s": cpu1 - cpu0,
    }
    print(json.dumps(result), flush=True)


# -------------------------------------------------------------------------------- orchestrator


@dataclass
class Variant:
    name: str
    server: Server
    headers: dict[str, str]


@dataclass
class Throughput:
    variant: str
    rps: float
    cpu_us: float
    """Server CPU time per answered request."""
    ok: int
    requests: int
    errors: int
    load_cpu: float
    """The load generator's CPU share (1 = one core)."""
    other_cores: float

    def row(self, label: str) -> str:
        noisy = "  (noisy)" if self.other_cores > NOISY_CORES else ""
        return (
            f"  {label:<8} {self.variant:<10} {self.rps:8.0f} req/s  server {self.cpu_us:6.0f} "
            f"µs CPU/req  ok {self.ok}/{self.requests} err {self.errors}  load gen "
            f"{self.load_cpu:4.0%}  other {self.other_cores:4.2f} cores{noisy}"
        )


async def start_variant(name: str, *argv: str) -> Variant:
    """A benchserver.py process; its first line is `PORT <n>` or `PORT <n> KEY <key>`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "benchserver.py"),
        "--kind",
        "quantsaas",
        "--rate",
        "200",
        "--no-record",
        "--log-level",
        "warning",
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    words = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().split()
    if len(words) < 2 or words[0] != "PORT":
        process.kill()
        raise RuntimeError(f"benchserver {name} did not start: {words}")
    headers = {"X-API-Key": words[3]} if len(words) >= 4 and words[2] == "KEY" else {}
    return Variant(name, Server(name, process, int(words[1])), headers)


async def closed_loop(variant: Variant, opts: argparse.Namespace) -> Throughput:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        "closed",
        "--url",
        f"http://127.0.0.1:{variant.server.port}{ROUTE}",
        "--connections",
        str(opts.connections),
        "--duration",
        str(opts.duration),
        "--warm",
        str(opts.warm),
        *[f"--header={name}:{value}" for name, value in variant.headers.items()],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    pid = variant.server.pid
    if (await asyncio.wait_for(process.stdout.readline(), 60)).strip() != b"WARM":
        raise RuntimeError(f"closed-loop load on {variant.name} failed")
    cpu0, machine0 = benchlib.cpu_seconds(pid), benchlib.machine_cpu()
    line = await asyncio.wait_for(process.stdout.readline(), opts.duration + 30)
    cpu1, machine1 = benchlib.cpu_seconds(pid), benchlib.machine_cpu()
    await process.wait()
    data = json.loads(line)
    seconds = data["seconds"]
    ok = sum(int(n) for code, n in data["statuses"].items() if str(code).startswith("2"))
    server_cpu = cpu1 - cpu0
    busy_cores = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9) * CPUS
    other = max(0.0, busy_cores - (server_cpu + data["cpu_s"]) / seconds)
    return Throughput(
        variant.name,
        data["requests"] / seconds,
        server_cpu / max(data["requests"], 1) * 1e6,
        ok,
        data["requests"],
        data["errors"],
        data["cpu_s"] / seconds,
        other,
    )


def overhead_text(ratio: float) -> str:
    """A throughput ratio as the overhead it means, with the target's verdict."""
    overhead = 1 - ratio
    verdict = "meets" if overhead < TARGET_OVERHEAD else "MISSES"
    return f"overhead {overhead:6.1%} ({verdict} < {TARGET_OVERHEAD:.0%})"


async def run_servers(opts: argparse.Namespace, redis_url: str) -> None:
    started = time.monotonic()
    variants = [
        await start_variant("off", "--access", "off"),
        await start_variant("open", "--access", "open"),
        await start_variant("key", "--access", "key"),
        await start_variant("key+redis", "--access", "key", "--rate-limit-bus", redis_url),
    ]
    try:
        await asyncio.sleep(1.0)
        for variant in variants:  # first requests: key cache filled, code paths warm
            check = await closed_loop(variant, warm_opts(opts))
            if check.ok != check.requests or check.errors:
                raise RuntimeError(f"{variant.name}: not every request answered 2xx: {check}")
        throughput: dict[str, list[Throughput]] = {v.name: [] for v in variants}
        print(
            f"\nthroughput, closed loop: {opts.connections} connections, {opts.duration:g} s "
            f"measured after {opts.warm:g} s warm-up, {opts.repeats} rounds",
            flush=True,
        )
        for index in range(opts.repeats):
            for variant in rotated(index, variants):
                result = await closed_loop(variant, opts)
                throughput[variant.name].append(result)
                print(result.row(f"round {index + 1}"), flush=True)
        latency: dict[str, list[Result]] = {v.name: [] for v in variants}
        print(
            f"\nlatency, open loop: {opts.rate:.0f} req/s offered, {opts.duration:g} s measured "
            f"after {opts.warm:g} s warm-up, {opts.repeats} rounds",
            flush=True,
        )
        for index in range(opts.repeats):
            for variant in rotated(index, variants):
                timed = await load(variant.server, ROUTE, variant.name, opts, variant.headers)
                latency[variant.name].append(timed)
    finally:
        for variant in variants:
            await variant.server.stop()
    summarize_servers(opts, throughput, latency, started)


def warm_opts(opts: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(opts), "warm": 0.2, "duration": 0.5})


def summarize_servers(
    opts: argparse.Namespace,
    throughput: dict[str, list[Throughput]],
    latency: dict[str, list[Result]],
    started: float,
) -> None:
    print(f"\n== summary ({time.monotonic() - started:.0f} s; {benchlib.machine_load()})")
    rounds = range(opts.repeats)
    base_t = throughput["off"]
    base_l = latency["off"]
    noisy_t = sum(1 for runs in throughput.values() for r in runs if r.other_cores > NOISY_CORES)
    noisy_l = sum(1 for runs in latency.values() for r in runs if r.other_cores > NOISY_CORES)
    total = opts.repeats * len(VARIANTS)
    print(
        f"windows with other jobs using > {NOISY_CORES} cores: throughput {noisy_t}/{total}, "
        f"latency {noisy_l}/{total}"
    )
    print("throughput, closed loop (median over rounds of the per-round ratio to off):")
    for name, runs in throughput.items():
        rps_ratio = med([runs[i].rps / base_t[i].rps for i in rounds])
        cpu_ratio = med([runs[i].cpu_us / base_t[i].cpu_us for i in rounds])
        line = (
            f"  {name:<10} {med([r.rps for r in runs]):7.0f} req/s  x{rps_ratio:5.3f}   "
            f"{med([r.cpu_us for r in runs]):5.0f} µs CPU/req  x{cpu_ratio:5.3f}"
        )
        if name != "off":
            line += (
                f"   +{med([runs[i].cpu_us - base_t[i].cpu_us for i in rounds]):4.0f} µs/req;"
                f" by req/s: {overhead_text(rps_ratio)}; by CPU: {overhead_text(1 / cpu_ratio)}"
            )
        print(line)
    print(f"latency, open loop at {opts.rate:.0f} req/s (median over rounds; ratio to off):")
    for name, results in latency.items():
        p50 = [r.data["p50_ms"] for r in results]
        p99 = [r.data["p99_ms"] for r in results]
        p50_ratio = med([p50[i] / base_l[i].data["p50_ms"] for i in rounds])
        p99_ratio = med([p99[i] / base_l[i].data["p99_ms"] for i in rounds])
        print(
            f"  {name:<10} p50 {med(p50):6.2f} ms x{p50_ratio:5.2f}   p99 {med(p99):7.2f} ms "
            f"x{p99_ratio:5.2f}   server cpu {med([r.server_cpu for r in results]):4.0%}"
        )


# ------------------------------------------------------------------------------------ main


async def orchestrate(opts: argparse.Namespace) -> None:
    print(f"bench_auth: {benchlib.machine_load()}", flush=True)
    with redis_server() as redis_url:
        await run_servers(opts, redis_url)
        await in_process(opts, redis_url)
    print(f"\n(end: {benchlib.machine_load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short windows: a smoke test")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop req/s")
    parser.add_argument("--duration", type=float)
    parser.add_argument("--warm", type=float)
    parser.add_argument("--guard-calls", type=int)
    parser.add_argument("--profile", action="store_true", help="cProfile the key guard calls")
    parser.add_argument("--role", choices=["orchestrator", "closed"], default="orchestrator")
    parser.add_argument("--url", default="")
    parser.add_argument("--header", action="append", default=[])
    opts = parser.parse_args()
    if opts.role == "closed":
        import uvloop

        uvloop.run(closed_main(opts))
        return
    opts.repeats = opts.repeats or (2 if opts.quick else 7)
    opts.duration = opts.duration or (1.0 if opts.quick else 3.0)
    opts.warm = opts.warm if opts.warm is not None else (0.3 if opts.quick else 1.0)
    opts.guard_calls = opts.guard_calls or (5_000 if opts.quick else 50_000)
    asyncio.run(orchestrate(opts))


if __name__ == "__main__":
    main()
