"""Scale-out: WebSocket fan-out throughput with 1, 2 and 4 API processes behind one Redis.

    .venv/bin/python bench/bench_scaleout.py [--apis 1,2,4] [--clients 1000] [--offered 400000]
        [--window 10] [--client-procs 2] [--rounds 1]

For each API process count K, in one run (so the ratios compare like with like):

* a real redis-server (tests/test_scale_out.py's `RedisServer`, free port, no persistence);
* one ingest process (this script, `--role ingest`): Engine + `PublishingBus` + `RedisPublisher`
  as `serve --role ingest` builds them, but fed by the benchmark feed `benchlib.BenchFeed` on the
  simulator's four instruments at a rate this script sets (the simulator's own rate cannot be
  set high or held steady: its order flow comes in bursts);
* K real `quantsaas serve --role api --bus redis://...` processes (as in bench/soak.py, with
  `QUANTSAAS_ANONYMOUS_TIER=demo`, the load-test tiers file and `QUANTSAAS_WS_MAX_LAG_S=600`, so
  an overloaded client loses messages, counted as gaps, instead of being disconnected);
* N picows clients in `--client-procs` processes (bench/soak.py's client), connection i on API
  process i mod K, each subscribed to trades + book + ticker of every symbol, so every event
  goes to every client.

The offered load (`--offered` msg/s = events/s x N) is far beyond what this machine can
deliver, so the delivered rate is the *saturated* fan-out throughput with K processes.

Per K it measures:
1. with no client connected (`--idle` s at rate 0, then `--idle` s at the benchmark rate): the
   API processes' CPU per relayed Redis entry (`relay us/entry`: XREAD, decode, re-publish on the
   local bus; every API process pays it for every entry, whatever its number of clients) and
   redis-server's CPU per entry per reader, both net of their CPU at rate 0;
2. with the clients, after a warm-up, over `--window` s: delivered msg/s, the CPU of every
   process (100% = one core), and the API CPU per delivered message once the relay cost is
   taken out (`send us/msg`).
Ratios are against the first K of the same round. "other" is the CPU used by everything else on
the machine (kernel work not charged to a process, other people's jobs), in cores; a window with
more than 0.3 is flagged "(noisy)".

On paper (printed last): K API processes each on its own core deliver about
K x (1e6 - relay_us x E) / send_us msg/s, E = entries/s on the stream, until Redis's one
thread is full (about 1e6 / (redis us per entry per reader x E) readers) or the clients' side
(network, load generators) is; the ingest's cost does not grow with K.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

import benchlib
import soak  # first: puts tests/ on sys.path for test_scale_out
from test_scale_out import Served, wait_ready

NOISY_CORES = 0.3
"""A window in which the rest of the machine used more CPU than this is flagged `(noisy)`."""


@dataclass
class Result:
    apis: int
    delivered: float
    """Messages/s received by all clients together."""
    offered: float
    """Messages/s the clients would have received had nothing been dropped (seq numbers)."""
    entries: float
    """Redis stream entries/s (messages and snapshots) read by each API process."""
    relay_us: float
    """API CPU per relayed entry per process with no clients (minus its CPU at rate 0), us."""
    redis_us: float
    """redis-server CPU per entry per reader (minus its CPU at rate 0), microseconds."""
    cpu: dict[str, float]
    other_cores: float
    send_us: float
    """API CPU per delivered message with the relay cost taken out, microseconds."""
    gaps: int
    disconnected: int
    relay_lag_s: float
    """The largest `quantsaas_redis_relay_lag_seconds` of the API processes after the window:
    how far behind the stream their relay was (an API process short of CPU falls behind there
    first, before its clients' queues overflow)."""

    def row(self, base: Result) -> str:
        cpu = " ".join(f"{name} {share:4.0%}" for name, share in self.cpu.items())
        return (
            f"  K={self.apis}: delivered {self.delivered:9.0f} msg/s (ratio vs K=1"
            f" {self.delivered / base.delivered:.2f}; offered {self.offered:9.0f})  relay"
            f" {self.relay_us:5.1f} us/entry x {self.entries:.0f} entries/s per process  send"
            f" {self.send_us:5.1f} us/msg  redis {self.redis_us:4.1f} us/entry/reader  gaps"
            f" {self.gaps} disc {self.disconnected}  relay lag {self.relay_lag_s:.2f} s  CPU:"
            f" {cpu} other {self.other_cores:.2f} cores"
            + ("  (noisy)" if self.other_cores > NOISY_CORES else "")
        )


def relayed(http: httpx.Client, served: Served) -> float:
    values = soak.scrape(http, served)
    return values.get("redis_relayed_message", 0.0) + values.get("redis_relayed_snapshot", 0.0)


# ------------------------------------------------------------------------------- ingest process


async def ingest_main(args: argparse.Namespace) -> None:
    """The ingest side of `serve --role ingest` (Engine + PublishingBus + RedisPublisher, as
    the composition root builds it) with the benchmark feed instead of the simulator: `BenchFeed` on
    the simulator's four instruments, so `quantsaas serve --role api` processes know them.
    No HTTP server (nobody connects to it). Lines on stdin: `rate <events/s>`, `stats`, `quit`."""
    from quantsaas import bus_redis, runtime
    from quantsaas.config import Settings
    from quantsaas.feeds.sim_instruments import default_instruments

    feed = benchlib.BenchFeed(default_instruments(), args.rate)
    built = runtime.build(Settings(web_dist=None), "ingest", feeds=[feed], bus_url=args.bus)
    bus, publisher = built.bus, built.link
    assert isinstance(publisher, bus_redis.RedisPublisher)
    task = asyncio.create_task(built.run())
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            break
        if line.startswith("rate "):
            feed.rate = float(line.split()[1])
            print("ok", flush=True)
        elif line == "stats":
            stats = {
                "t": time.monotonic(),
                "published": bus.published,
                "skipped": feed.pace_stats.skipped,
                "pending": len(publisher.pending),
                "dropped": publisher.dropped,
            }
            print(json.dumps(stats), flush=True)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class BenchCluster(soak.Cluster):
    """redis-server, the bench ingest process (`ingest_main`) and K `quantsaas serve --role api`."""

    feeder: soak.Proc | None = None

    async def start_async(self, rate: float) -> None:
        await asyncio.to_thread(self.redis.start)
        argv = ["--role", "ingest", "--bus", self.redis.url, "--rate", str(rate)]
        log = self.tmp / "ingest.log"
        self.feeder = await soak.Proc.start("ingest", str(Path(__file__).resolve()), *argv, log=log)
        await self.feeder.line(60)
        env = {**soak.SERVE_ENV, **self.opts.serve_env}
        tiers = soak.load_tiers(self.tmp)
        if tiers is not None:
            env["QUANTSAAS_TIERS_FILE"] = str(tiers)
        args = ("--bus", self.redis.url, "--log-level", "warning")
        self.apis = [self._serve(f"api{i}", env, *args) for i in range(self.opts.apis)]

        def ready() -> None:
            for served in self.apis:
                served.wait_url()
            for served in self.apis:
                wait_ready(served, 200, 30)

        await asyncio.to_thread(ready)

    def pids(self) -> dict[str, int]:
        pids = super().pids()
        if self.feeder is not None:
            pids["ingest"] = self.feeder.process.pid
        return pids

    async def stop_async(self) -> None:
        if self.feeder is not None:
            await self.feeder.stop()
        await asyncio.to_thread(self.stop)


# -------------------------------------------------------------------------------- orchestrator


async def measure(apis: int, opts: argparse.Namespace) -> Result:
    tmp = Path(tempfile.mkdtemp(prefix="quantsaas-scaleout-"))
    options = soak.Options(
        clients=opts.clients,
        apis=apis,
        client_procs=opts.client_procs,
        serve_env={"QUANTSAAS_WS_MAX_LAG_S": "600"},
    )
    rate = opts.offered / opts.clients
    cluster = BenchCluster(tmp, options)
    clients: list[soak.Proc] = []
    http = httpx.Client()
    try:
        await cluster.start_async(rate)
        assert cluster.feeder is not None
        pids = cluster.pids()
        api_names = [f"api{i}" for i in range(apis)]

        # 1. no clients: the relay's cost per entry in each API process (and Redis's per entry
        # per reader), as the CPU at the rate minus the CPU at rate 0 (timers, snapshots)
        async def idle_window(events_per_s: float) -> tuple[float, float, float]:
            """(entries/s per API process, API CPU per process, redis CPU) at that rate."""
            await cluster.feeder.ask(f"rate {events_per_s}")  # type: ignore[union-attr]
            await asyncio.sleep(0.5)
            before = [relayed(http, api) for api in cluster.apis]
            cpu0 = {name: benchlib.cpu_seconds(pid) for name, pid in pids.items()}
            started = time.monotonic()
            await asyncio.sleep(opts.idle)
            cpu1 = {name: benchlib.cpu_seconds(pid) for name, pid in pids.items()}
            idle_s = time.monotonic() - started
            after = [relayed(http, api) for api in cluster.apis]
            entries = sum(b - a for a, b in zip(before, after, strict=True)) / apis / idle_s
            api = sum(cpu1[name] - cpu0[name] for name in api_names) / apis / idle_s
            return entries, api, (cpu1["redis"] - cpu0["redis"]) / idle_s

        entries0, api0, redis0 = await idle_window(0.0)
        entries, api_busy, redis_busy = await idle_window(rate)
        relay_us = max(0.0, api_busy - api0) / max(entries - entries0, 1e-9) * 1e6
        redis_us = max(0.0, redis_busy - redis0) / max((entries - entries0) * apis, 1e-9) * 1e6

        # 2. with the clients
        urls = ",".join(api.ws for api in cluster.apis)
        shares = [opts.clients // opts.client_procs] * opts.client_procs
        shares[0] += opts.clients - sum(shares)
        first = 0
        for index, share in enumerate(shares):
            argv = ["--role", "client", "--urls", urls, "--clients", str(share)]
            argv += ["--first", str(first), "--sample-every", "1000000"]
            script = str(Path(soak.__file__).resolve())
            log = tmp / f"client{index}.log"
            clients.append(await soak.Proc.start(f"client {index}", script, *argv, log=log))
            first += share
        ready = sum([int((await client.line(180)).split()[1]) for client in clients])
        if ready != opts.clients:
            logs = "".join(path.read_text()[-2000:] for path in sorted(tmp.glob("client*.log")))
            raise RuntimeError(f"K={apis}: {ready} of {opts.clients} clients subscribed\n{logs}")
        pids.update({f"cli{i}": client.process.pid for i, client in enumerate(clients)})
        await asyncio.sleep(opts.warm)
        reports0 = [json.loads(await client.ask("report")) for client in clients]
        stats0 = json.loads(await cluster.feeder.ask("stats"))
        cpu0 = {name: benchlib.cpu_seconds(pid) for name, pid in pids.items()}
        machine0 = benchlib.machine_cpu()
        started = time.monotonic()
        await asyncio.sleep(opts.window)
        reports1 = [json.loads(await client.ask("report")) for client in clients]
        stats1 = json.loads(await cluster.feeder.ask("stats"))
        cpu1 = {name: benchlib.cpu_seconds(pid) for name, pid in pids.items()}
        machine1 = benchlib.machine_cpu()
        seconds = time.monotonic() - started
        lag = max(soak.scrape(http, api).get("redis_relay_lag_s", 0.0) for api in cluster.apis)

        def delta(key: str) -> int:
            return sum(b[key] - a[key] for a, b in zip(reports0, reports1, strict=True))

        cpu = {name: (cpu1[name] - cpu0[name]) / seconds for name in pids}
        busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9)
        delivered = delta("count") / seconds
        api_cpu = sum(cpu[name] for name in api_names)
        send_us = (api_cpu - relay_us * 1e-6 * entries * apis) / max(delivered, 1e-9) * 1e6
        published = (stats1["published"] - stats0["published"]) / (stats1["t"] - stats0["t"])
        return Result(
            apis=apis,
            delivered=delivered,
            offered=published * ready,
            entries=entries,
            relay_us=relay_us,
            redis_us=redis_us,
            cpu=cpu,
            other_cores=max(0.0, busy * (os.cpu_count() or 1) - sum(cpu.values())),
            send_us=send_us,
            gaps=delta("gaps"),
            disconnected=sum(report["disconnected"] for report in reports1),
            relay_lag_s=lag,
        )
    finally:
        for client in clients:
            await client.stop()
        http.close()
        await cluster.stop_async()
        shutil.rmtree(tmp, ignore_errors=True)


def paper(results: list[Result]) -> list[str]:
    relay_us = sorted(r.relay_us for r in results)[len(results) // 2]
    send_us = sorted(r.send_us for r in results)[len(results) // 2]
    redis_us = sorted(r.redis_us for r in results)[len(results) // 2]
    entries = results[0].entries
    per_core = (1e6 - relay_us * entries) / send_us
    readers = 1e6 / max(redis_us * entries, 1e-9)
    lines = [
        f"on paper (medians of this run: send {send_us:.1f} us/msg, relay {relay_us:.1f}"
        f" us/entry, redis {redis_us:.1f} us/entry/reader, {entries:.0f} entries/s):",
        f"  one API process on its own core: ~{per_core:,.0f} msg/s (relay takes"
        f" {relay_us * entries / 1e4:.1f}% of that core)",
    ]
    for k in (1, 2, 4, 8, 16):
        lines.append(f"  K={k:<2} processes on {k} free cores: ~{k * per_core:,.0f} msg/s")
    lines.append(
        f"  Redis (one thread) serves that stream to ~{readers:,.0f} API processes before its"
        " core is full"
    )
    return lines


async def orchestrate(opts: argparse.Namespace) -> None:
    benchlib.raise_fd_limit()
    print(
        f"bench_scaleout: {benchlib.machine_load()}; {opts.clients} clients, offered"
        f" {opts.offered:,.0f} msg/s ({opts.offered / opts.clients:.0f} events/s)",
        flush=True,
    )
    results: list[Result] = []
    for _ in range(opts.rounds):
        for apis in opts.apis:
            result = await measure(apis, opts)
            results.append(result)
            base = next((r for r in results if r.apis == opts.apis[0]), result)
            print(result.row(base), flush=True)
    print(f"\n== summary ({benchlib.machine_load()})")
    first = opts.apis[0]
    for apis in opts.apis:
        mine = [r.delivered for r in results if r.apis == apis]
        baseline = [r.delivered for r in results if r.apis == first]
        ratios = ", ".join(f"{m / b:.2f}" for m, b in zip(mine, baseline, strict=True))
        best = max(mine)
        print(
            f"  K={apis}: delivered {best:9.0f} msg/s (best of {len(mine)}); ratio vs K={first}"
            f" per round: {ratios}"
        )
    for line in paper(results):
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", default="1,2,4", help="API process counts, the baseline first")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--offered",
        type=float,
        default=400_000.0,
        help="messages/s offered to all clients together (events/s x clients)",
    )
    parser.add_argument("--role", choices=["orchestrator", "ingest"], default="orchestrator")
    parser.add_argument("--bus", default="", help="ingest role: the Redis URL")
    parser.add_argument("--rate", type=float, default=0.0, help="ingest role: events/s")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--idle", type=float, default=5.0, help="s without clients (relay cost)")
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole K sequence")
    opts = parser.parse_args()
    if opts.role == "ingest":
        import uvloop

        uvloop.run(ingest_main(opts))
        return
    opts.apis = [int(part) for part in opts.apis.split(",") if part]
    asyncio.run(orchestrate(opts))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
