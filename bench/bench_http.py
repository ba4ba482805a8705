"""REST latency at a fixed offered rate, and idle memory of the `serve` process.

    .venv/bin/python bench/bench_http.py [--quick] [--rate 1000] [--duration S]

Latency (open loop): a separate load process (aiohttp on uvloop, up to 64 keep-alive
connections) starts one GET every 1/rate s on a fixed schedule, whatever earlier requests are
doing, and times each from its *scheduled* start to the end of its body (so a stall is not
hidden by the client waiting for it: no coordinated omission). The first `warm` seconds are
discarded. Each route is loaded alone, in turn, for the same duration:

* `serve`: the real `.venv/bin/quantsaas serve --port 0` (simulator feed, default settings,
  so uvicorn at log level info with its access log, on the stdlib asyncio loop that
  cli.serve's `asyncio.run` gives it), except for access control (`SERVE_ENV`): anonymous
  callers get the `bench` tier of bench/bench_tiers.toml (limits far above this benchmark, so
  requests still pass the guard and the rate limiter), and no first-start admin is created:
  `/health` (trivial baseline route of the same server) and `/api/market_data`;
* `bench`: the same app built the same way (Engine + create_app + uvicorn, bench/benchserver.py)
  with the benchmark feed at 200 events/s, plus two benchmark-only routes: `/_bench/static`
  (`async def` returning a constant: the framework's floor in this server) and
  `/_bench/market_data_async` (exactly the /api/market_data work, but `async def`, so FastAPI
  runs it on the event loop instead of sending it to its thread pool), and `/api/market_data`
  again with the access log off (`--log-level warning`);
* `starlette`: a bare Starlette app with one async route returning a constant (`/static`).

Ratios are p50/p99 of a route over p50/p99 of the baseline route measured in the same run.
Server CPU is the server process's CPU time over the window (100% = one core); "other" is the
CPU the rest of the machine used meanwhile (other people's jobs on a shared machine), in cores:
rerun when it is large. No target was set beyond "p99 well under 50 ms at 1,000 req/s"; the
ratios tell what the framework and the route's own work cost.

Memory: VmRSS of an idle `quantsaas serve --port 0` (started, feeds running, no client, read
after a few seconds) beside a bare `python -c 'import fastapi, uvicorn'` process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CPUS = os.cpu_count() or 1
SERVE_ENV = {
    "QUANTSAAS_TIERS_FILE": str(HERE / "bench_tiers.toml"),
    "QUANTSAAS_ANONYMOUS_TIER": "bench",
    "QUANTSAAS_BOOTSTRAP_ADMIN": "false",
}
"""Environment of the `quantsaas serve` processes: closed by default, the service would refuse
(60 requests/min per IP) or delay what this benchmark asks for; this opens it, as the demo does,
with a tier whose limits are far above the offered load."""


# ----------------------------------------------------------------------------- load generator


async def get_status(session: Any, url: str) -> int | None:
    """GET `url`, read the body: the status, or None when the request failed (counted apart)."""
    import aiohttp

    try:
        async with session.get(url) as response:
            await response.read()
            status: int = response.status
            return status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def load_main(opts: argparse.Namespace) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=10)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    clock = time.perf_counter
    total = int(opts.rate * (opts.duration + opts.warm))
    measured_from = opts.warm
    tasks: set[asyncio.Task[None]] = set()

    headers = dict(header.split(":", 1) for header in opts.header)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        # open the keep-alive connections before the schedule starts
        await asyncio.gather(*(session.get(opts.url) for _ in range(8)), return_exceptions=True)
        start = clock() + 0.05

        async def one(offset: float) -> None:
            nonlocal errors
            status = await get_status(session, opts.url)
            if status is None:
                errors += 1
                return
            if offset >= measured_from:
                latencies.append(clock() - (start + offset))
                statuses[status] = statuses.get(status, 0) + 1

        for index in range(total):
            offset = index / opts.rate
            delay = start + offset - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(offset))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        sent_span = clock() - start
        if tasks:
            await asyncio.wait(tasks, timeout=15)
    latencies.sort()
    result = {
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "send_lag_s": sent_span - (total - 1) / opts.rate,
        "p50_ms": benchlib.percentile(latencies, 50) * 1000,
        "p90_ms": benchlib.percentile(latencies, 90) * 1000,
        "p99_ms": benchlib.percentile(latencies, 99) * 1000,
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "cpu_s": time.process_time(),
    }
    print(json.dumps(result), flush=True)


# -------------------------------------------------------------------------------- orchestrator


@dataclass
class Server:
    name: str
    process: asyncio.subprocess.Process
    port: int

    def __post_init__(self) -> None:
        # uvicorn's access log goes to stdout: keep the pipe drained or the server blocks
        self._drain = asyncio.create_task(self._discard_stdout())

    async def _discard_stdout(self) -> None:
        assert self.process.stdout is not None
        while await self.process.stdout.read(1 << 16):
            pass

    @property
    def pid(self) -> int:
        return self.process.pid

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            try:
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 5)
                return
            except (ConnectionError, TimeoutError):
                pass
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def start_serve(cwd: str) -> Server:
    """The real CLI, run in `cwd`; its port is read from the banner it prints."""
    process = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "quantsaas"),
        "serve",
        "--port",
        "0",
        cwd=cwd,
        env={**os.environ, **SERVE_ENV},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line:
            break
        found = re.search(rb"running on http://[^:]+:(\d+)/", line)
        if found:
            return Server("serve", process, int(found.group(1)))
    raise RuntimeError(f"quantsaas serve did not start (exit code {process.returncode})")


async def start_benchserver(name: str, *argv: str) -> Server:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "benchserver.py"),
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    return Server(name, process, int(line.split()[1]))


@dataclass
class Result:
    server: str
    route: str
    note: str
    data: dict[str, Any]
    server_cpu: float
    other_cores: float
    """CPU used by the rest of the machine meanwhile (other people's jobs), in cores."""

    def row(self) -> str:
        d = self.data
        ok = sum(int(n) for code, n in d["statuses"].items() if str(code).startswith("2"))
        return (
            f"  {self.server:<9} {self.route:<27} {self.note:<18} p50 {d['p50_ms']:7.2f} ms  "
            f"p90 {d['p90_ms']:7.2f} ms  p99 {d['p99_ms']:7.2f} ms  max {d['max_ms']:7.1f} ms  "
            f"ok {ok:5d}/{int(d['requests']):5d} err {int(d['errors'])}  "
            f"srv cpu {self.server_cpu:4.0%}  other {self.other_cores:4.2f} cores"
        )


async def load(
    server: Server,
    route: str,
    note: str,
    opts: argparse.Namespace,
    headers: dict[str, str] | None = None,
) -> Result:
    """One open-loop load run against `server` (`headers` sent with every request)."""
    url = f"http://127.0.0.1:{server.port}{route}"
    header_args = [f"--header={name}:{value}" for name, value in (headers or {}).items()]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--role",
        "load",
        "--url",
        url,
        "--rate",
        str(opts.rate),
        "--duration",
        str(opts.duration),
        "--warm",
        str(opts.warm),
        *header_args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    cpu0, t0, machine0 = benchlib.cpu_seconds(server.pid), time.monotonic(), benchlib.machine_cpu()
    out, _ = await process.communicate()
    cpu1, t1, machine1 = benchlib.cpu_seconds(server.pid), time.monotonic(), benchlib.machine_cpu()
    data = json.loads(out)
    wall = t1 - t0
    busy_cores = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9) * CPUS
    other = max(0.0, busy_cores - (cpu1 - cpu0 + data["cpu_s"]) / wall)
    result = Result(server.name, route, note, data, (cpu1 - cpu0) / wall, other)
    print(result.row(), flush=True)
    return result


async def idle_rss(
    argv: list[str], settle: float, ready: bytes, cwd: str, env: dict[str, str] | None = None
) -> int:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        while ready not in await asyncio.wait_for(process.stdout.readline(), 30):
            pass
        await asyncio.sleep(settle)
        return benchlib.rss_kib(process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


def _ratio(value: float, base: float) -> str:
    return f"{value / base:5.2f}" if base else "  n/a"


async def orchestrate(opts: argparse.Namespace) -> None:
    print(f"bench_http: {benchlib.machine_load()}", flush=True)
    print(
        f"open loop, {opts.rate:.0f} req/s offered, {opts.duration:g} s measured after "
        f"{opts.warm:g} s warm-up, per route",
        flush=True,
    )
    started = time.monotonic()
    # `serve` records history into ./data by default: run it in a scratch directory
    workdir = tempfile.mkdtemp(prefix="quantsaas-bench-http-")
    try:
        results, rss = await run_all(opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summarize(opts, results, rss, started)


async def run_all(
    opts: argparse.Namespace, workdir: str
) -> tuple[dict[str, Result], dict[str, int]]:
    results: dict[str, Result] = {}
    rss: dict[str, int] = {}
    # memory first, on fresh processes, before any request
    serve_argv = [str(VENV_BIN / "quantsaas"), "serve", "--port", "0"]
    rss["serve"] = await idle_rss(serve_argv, opts.settle, b"running on", workdir, SERVE_ENV)
    bare_code = "import fastapi, uvicorn, time; print('ready', flush=True); time.sleep(600)"
    rss["bare"] = await idle_rss([sys.executable, "-c", bare_code], opts.settle, b"ready", workdir)

    serve = await start_serve(workdir)
    try:
        await asyncio.sleep(1.0)
        results["serve /health"] = await load(serve, "/health", "log info", opts)
        results["serve market"] = await load(serve, "/api/market_data", "log info", opts)
    finally:
        await serve.stop()

    bench = await start_benchserver(
        "bench", "--kind", "quantsaas", "--rate", "200", "--extra-routes", "--log-level", "info"
    )
    try:
        await asyncio.sleep(1.0)
        results["bench static"] = await load(bench, "/_bench/static", "log info", opts)
        results["bench market"] = await load(bench, "/api/market_data", "log info", opts)
        results["bench market async"] = await load(
            bench, "/_bench/market_data_async", "log info, async", opts
        )
    finally:
        await bench.stop()

    quiet = await start_benchserver(
        "bench", "--kind", "quantsaas", "--rate", "200", "--log-level", "warning"
    )
    try:
        await asyncio.sleep(1.0)
        results["bench market quiet"] = await load(quiet, "/api/market_data", "log warning", opts)
    finally:
        await quiet.stop()

    bare = await start_benchserver("starlette", "--kind", "bare-http", "--log-level", "info")
    try:
        await asyncio.sleep(0.5)
        results["starlette"] = await load(bare, "/static", "log info", opts)
    finally:
        await bare.stop()
    return results, rss


def summarize(
    opts: argparse.Namespace, results: dict[str, Result], rss: dict[str, int], started: float
) -> None:
    def line(name: str, base: str) -> str:
        r, b = results[name].data, results[base].data
        return (
            f"  {name:<20} vs {base:<14} p50 x{_ratio(r['p50_ms'], b['p50_ms'])}  "
            f"p99 x{_ratio(r['p99_ms'], b['p99_ms'])}  server cpu "
            f"{results[name].server_cpu:4.0%} vs {results[base].server_cpu:4.0%}"
        )

    print(f"\n== summary ({time.monotonic() - started:.0f} s; {benchlib.machine_load()})")
    market = results["serve market"].data
    print(
        f"/api/market_data on quantsaas serve at {opts.rate:.0f} req/s: p50 "
        f"{market['p50_ms']:.2f} ms, p99 {market['p99_ms']:.2f} ms"
    )
    noisy = [name for name, result in results.items() if result.other_cores > 0.3]
    if noisy:
        print(f"(other jobs used > 0.3 cores during: {', '.join(noisy)})")
    print("latency ratios (same run):")
    print(line("serve market", "serve /health"))
    print(line("bench market", "bench static"))
    print(line("bench market", "starlette"))
    print(line("bench static", "starlette"))
    print(line("bench market async", "bench market"))
    print(line("bench market quiet", "bench market"))
    serve, bare = rss["serve"], rss["bare"]
    print(
        f"idle RSS: quantsaas serve {serve / 1024:.1f} MiB; python -c 'import fastapi, "
        f"uvicorn' {bare / 1024:.1f} MiB; ratio {serve / bare:.2f} "
        f"(+{(serve - bare) / 1024:.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--warm", type=float)
    parser.add_argument("--role", choices=["orchestrator", "load"], default="orchestrator")
    parser.add_argument("--url", default="")
    parser.add_argument(
        "--header", action="append", default=[], help="load role: NAME:VALUE sent every time"
    )
    opts = parser.parse_args()
    if opts.role == "load":
        import uvloop

        uvloop.run(load_main(opts))
        return
    opts.duration = opts.duration or (1.0 if opts.quick else 6.0)
    opts.warm = opts.warm if opts.warm is not None else (0.5 if opts.quick else 1.0)
    opts.settle = 1.0 if opts.quick else 4.0
    asyncio.run(orchestrate(opts))


if __name__ == "__main__":
    main()
