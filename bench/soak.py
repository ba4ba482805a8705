"""Load and soak test: N WebSocket clients on API processes behind Redis, for a fixed duration.

    .venv/bin/python bench/soak.py [--clients 1000] [--duration 300] [--apis 2] [--rate 5]
        [--warmup 60] [--sample 10] [--client-procs 2]

Bounded, loopback only, and it stops by itself. What runs, all on this machine:

* a real `redis-server` (Debian package) on a free port with a temporary directory and no
  persistence (the scale-out test's `RedisServer`, tests/test_scale_out.py);
* one `quantsaas serve --role ingest --bus redis://...` (the simulator, `--rate` events/s per
  symbol on all four symbols, `--no-record`) and `--apis` processes `quantsaas serve --role api`
  on the same bus, each a real `python -m quantsaas.cli serve` as an operator would start it
  (with `QUANTSAAS_ANONYMOUS_TIER=demo`, so anonymous clients are served once auth exists);
* `--client-procs` load-generator processes (this script, `--role client`) holding N picows
  connections in total, connection i on API process i mod `--apis`, each subscribed to
  trades + book + ticker of every symbol. Every client checks every message: per stream
  (channel, venue, symbol) the `seq` must go up by exactly one (a book stream must start with
  its snapshot), and `gap` messages, re-snapshots, errors and disconnects are counted. Every
  `--sample-every`th connection also records latency = receive time - `ts_recv` of the message
  (`ts_recv` is stamped by the ingest process when the simulator emits the event; one host, one
  clock), so latency covers ingest -> Redis -> API process -> client.

Every `--sample` seconds it prints one row: delivered messages/s (all clients), p50/p99/max
latency in that interval, gaps / seq errors / disconnects so far, clients that got nothing in
the interval, the RSS of every process (ingest, API processes, redis-server, load generators)
and CPU (100% = one core; "other" = the rest of the machine, in cores: other people's jobs).
The summary takes the intervals after `--warmup`: delivered msg/s and latency percentiles over
them; RSS growth per process from the first sample after the warm-up to the last, and the
least-squares slope over those samples (MiB/min); the baseline in the same run is the
process's own RSS at the end of the warm-up (target: no growth). Ratios: delivered vs the
rate the ingest process published times the clients (`delivery ratio`, 1.00 when nobody
lost anything), and RSS end / RSS after warm-up.

tests/test_soak.py runs the same code (`run(Options(...))`) small and short.

The load generator (`--role client`) is bench/soak_clients.py; redis-server, the `serve`
processes and their /metrics are bench/soak_cluster.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

import benchlib
from soak_clients import Proc as Proc
from soak_clients import client_main
from soak_cluster import SERVE_ENV as SERVE_ENV
from soak_cluster import Cluster as Cluster
from soak_cluster import bus_messages
from soak_cluster import load_tiers as load_tiers
from soak_cluster import scrape as scrape

# -------------------------------------------------------------------------------- orchestrator


@dataclass
class Options:
    clients: int = 1000
    duration_s: float = 300.0
    apis: int = 2
    rate: float = 5.0
    """Simulator book events per second per symbol (the ingest's `--rate`)."""
    warmup_s: float = 60.0
    sample_s: float = 10.0
    client_procs: int = 2
    sample_every: int = 10
    quiet: bool = False
    serve_env: dict[str, str] = field(default_factory=dict)
    """Extra environment for the `quantsaas serve` processes (on top of `SERVE_ENV`)."""


@dataclass
class Interval:
    t: float
    """Seconds since the clients were ready, at the end of the interval."""
    seconds: float
    delivered: int
    published: float
    """Messages the ingest process published in the interval on all channels (its bus counter,
    which also counts option tickers and analytics the clients did not subscribe to)."""
    latencies_us: list[int]
    gaps: int
    seq_errors: int
    missing: int
    resnapshots: int
    errors: int
    disconnected: int
    silent: int
    never: int
    rss_kib: dict[str, int]
    cpu: dict[str, float]
    """Share of one core per process in the interval."""
    other_cores: float


@dataclass
class RssGrowth:
    name: str
    after_warmup_mib: float
    end_mib: float
    slope_mib_per_min: float

    @property
    def growth_mib(self) -> float:
        return self.end_mib - self.after_warmup_mib


@dataclass
class Summary:
    clients: int
    ready: int
    intervals: list[Interval]
    warm: list[Interval]
    """The intervals after the warm-up (all of them if the run was shorter)."""
    delivered_per_s: float
    per_client_per_s: float
    published_per_s: float
    """Everything the ingest process published (all channels), for scale."""
    missing: int
    """Messages the clients' seq numbers say they should have had but did not get."""
    p50_ms: float
    p99_ms: float
    max_ms: float
    gaps: int
    seq_errors: int
    resnapshots: int
    errors: int
    disconnected: int
    never: int
    silent_after_warmup: int
    rss: list[RssGrowth]
    metrics: dict[str, dict[str, float]]
    """A few /metrics values per server process at the end."""
    load: str


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return cov / var if var else 0.0


def _rss(pid: int) -> int:
    try:
        return benchlib.rss_kib(pid)
    except (OSError, RuntimeError):
        return 0


def _cpu(pid: int) -> float:
    try:
        return benchlib.cpu_seconds(pid)
    except OSError:
        return 0.0


def _row(interval: Interval) -> str:
    lat = sorted(interval.latencies_us)
    rss = " ".join(f"{name} {kib / 1024:5.0f}" for name, kib in interval.rss_kib.items())
    cpu = " ".join(f"{name} {share:4.0%}" for name, share in interval.cpu.items())
    return (
        f"  t={interval.t:5.0f}s delivered {interval.delivered / interval.seconds:8.0f} msg/s  "
        f"p50 {benchlib.percentile(lat, 50) / 1000:6.2f} ms  "
        f"p99 {benchlib.percentile(lat, 99) / 1000:7.2f} ms  "
        f"max {(lat[-1] / 1000 if lat else float('nan')):7.1f} ms  "
        f"gaps {interval.gaps} seqerr {interval.seq_errors} resnap {interval.resnapshots} "
        f"disc {interval.disconnected} silent {interval.silent}  RSS MiB: {rss}  "
        f"CPU: {cpu} other {interval.other_cores:.2f} cores"
    )


async def run(opts: Options) -> Summary:
    """Start everything, hold the clients for `opts.duration_s`, stop everything, summarise."""
    benchlib.raise_fd_limit()  # inherited by every process started below

    def say(text: str) -> None:
        if not opts.quiet:
            print(text, flush=True)

    say(f"soak: {benchlib.machine_load()}")
    tmp = Path(tempfile.mkdtemp(prefix="quantsaas-soak-"))
    cluster = Cluster(tmp, opts)
    clients: list[Proc] = []
    http = httpx.Client()
    try:
        await asyncio.to_thread(cluster.start)
        assert cluster.ingest is not None
        urls = ",".join(api.ws for api in cluster.apis)
        shares = [opts.clients // opts.client_procs] * opts.client_procs
        shares[0] += opts.clients - sum(shares)
        first = 0
        for index, share in enumerate(shares):
            argv = ["--role", "client", "--urls", urls, "--clients", str(share)]
            argv += ["--first", str(first), "--sample-every", str(opts.sample_every)]
            log = tmp / f"client{index}.log"
            clients.append(await Proc.start(f"client {index}", __file__, *argv, log=log))
            first += share
        ready = sum([int((await client.line(180)).split()[1]) for client in clients])
        say(
            f"soak: {ready} of {opts.clients} clients subscribed on {opts.apis} API processes;"
            f" {opts.duration_s:.0f} s, warm-up {opts.warmup_s:.0f} s, sample every"
            f" {opts.sample_s:.0f} s"
        )
        pids = cluster.pids()
        pids.update({f"cli{i}": client.process.pid for i, client in enumerate(clients)})
        intervals: list[Interval] = []
        # counting starts now (what arrived while the others subscribed is not counted)
        first_reports = [json.loads(await client.ask("report")) for client in clients]
        started = last = time.monotonic()
        cpu0 = {name: _cpu(pid) for name, pid in pids.items()}
        machine0 = benchlib.machine_cpu()
        published0 = bus_messages(http.get(f"{cluster.ingest.base}/metrics").text)
        totals0 = {"count": sum(int(report["count"]) for report in first_reports)}
        while last - started < opts.duration_s - 1e-6:
            target = min(started + opts.duration_s, last + opts.sample_s)
            await asyncio.sleep(max(0.0, target - time.monotonic()))
            reports = [json.loads(await client.ask("report")) for client in clients]
            now = time.monotonic()
            cpu1 = {name: _cpu(pid) for name, pid in pids.items()}
            machine1 = benchlib.machine_cpu()
            published1 = bus_messages(http.get(f"{cluster.ingest.base}/metrics").text)
            seconds = now - last
            busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9)
            cpu = {name: (cpu1[name] - cpu0[name]) / seconds for name in pids}
            count = sum(report["count"] for report in reports)

            def total(key: str, reports: list[dict[str, Any]] = reports) -> int:
                return sum(int(report[key]) for report in reports)

            interval = Interval(
                t=now - started,
                seconds=seconds,
                delivered=count - totals0["count"],
                published=published1 - published0,
                latencies_us=[v for report in reports for v in report["latencies_us"]],
                gaps=total("gaps"),
                seq_errors=total("seq_errors"),
                missing=total("missing"),
                resnapshots=total("resnapshots"),
                errors=total("errors"),
                disconnected=total("disconnected"),
                silent=total("silent"),
                never=total("never"),
                rss_kib={name: _rss(pid) for name, pid in pids.items()},
                cpu=cpu,
                other_cores=max(0.0, busy * (os.cpu_count() or 1) - sum(cpu.values())),
            )
            intervals.append(interval)
            say(_row(interval))
            totals0["count"], last, cpu0, machine0 = count, now, cpu1, machine1
            published0 = published1
        metrics = {
            name: scrape(http, served)
            for name, served in zip(
                ["ingest", *(f"api{i}" for i in range(opts.apis))], cluster.servers, strict=True
            )
        }
        return summarise(opts, ready, intervals, metrics)
    finally:
        for client in clients:
            await client.stop()
        http.close()
        await asyncio.to_thread(cluster.stop)
        shutil.rmtree(tmp, ignore_errors=True)


def summarise(
    opts: Options, ready: int, intervals: list[Interval], metrics: dict[str, dict[str, float]]
) -> Summary:
    # an interval is after the warm-up when it started then (sample times run a little late)
    starts = opts.warmup_s - 0.25 * opts.sample_s
    warm = [interval for interval in intervals if interval.t - interval.seconds >= starts]
    if not warm:
        warm = intervals[-1:]
    seconds = sum(interval.seconds for interval in warm)
    latencies = sorted(v for interval in warm for v in interval.latencies_us)
    last = intervals[-1]
    # the RSS right at the end of the warm-up: the last sample taken before `warm` starts
    index = intervals.index(warm[0])
    base = intervals[index - 1] if index else warm[0]
    samples = intervals[max(0, index - 1) :]
    growth = []
    for name in last.rss_kib:
        points = [(i.t / 60, i.rss_kib[name] / 1024) for i in samples]
        growth.append(
            RssGrowth(
                name,
                base.rss_kib[name] / 1024,
                last.rss_kib[name] / 1024,
                _slope(points),
            )
        )
    return Summary(
        clients=opts.clients,
        ready=ready,
        intervals=intervals,
        warm=warm,
        delivered_per_s=sum(interval.delivered for interval in warm) / seconds,
        per_client_per_s=sum(interval.delivered for interval in warm) / seconds / max(ready, 1),
        published_per_s=sum(interval.published for interval in warm) / seconds,
        missing=last.missing,
        p50_ms=benchlib.percentile(latencies, 50) / 1000,
        p99_ms=benchlib.percentile(latencies, 99) / 1000,
        max_ms=(latencies[-1] / 1000) if latencies else float("nan"),
        gaps=last.gaps,
        seq_errors=last.seq_errors,
        resnapshots=last.resnapshots,
        errors=last.errors,
        disconnected=last.disconnected,
        never=last.never,
        silent_after_warmup=sum(interval.silent for interval in warm),
        rss=growth,
        metrics=metrics,
        load=benchlib.machine_load(),
    )


def report(summary: Summary, opts: Options) -> str:
    warm = summary.warm
    delivered = sum(interval.delivered for interval in summary.intervals) or 1
    lines = [
        f"== summary: {summary.ready} of {summary.clients} clients on {opts.apis} API processes,"
        f" {sum(i.seconds for i in summary.intervals):.0f} s ({len(warm)} intervals after the"
        f" {opts.warmup_s:.0f} s warm-up); {summary.load}",
        f"delivered {summary.delivered_per_s:,.0f} msg/s in total, {summary.per_client_per_s:.1f}"
        f" msg/s per client (the ingest published {summary.published_per_s:.0f} msg/s on all"
        f" channels); messages missing by seq {summary.missing} (delivery ratio"
        f" {delivered / (delivered + summary.missing):.4f})",
        f"latency ingest -> Redis -> API -> client: p50 {summary.p50_ms:.2f} ms,"
        f" p99 {summary.p99_ms:.2f} ms, max {summary.max_ms:.1f} ms",
        f"gaps {summary.gaps}, seq errors {summary.seq_errors}, re-snapshots"
        f" {summary.resnapshots}, errors {summary.errors}, disconnects {summary.disconnected},"
        f" clients that never got data {summary.never}, silent client-intervals after warm-up"
        f" {summary.silent_after_warmup}",
        "RSS after warm-up -> end (ratio end/after warm-up; least-squares slope after warm-up):",
    ]
    for growth in summary.rss:
        ratio = growth.end_mib / growth.after_warmup_mib if growth.after_warmup_mib else 0.0
        lines.append(
            f"  {growth.name:<7} {growth.after_warmup_mib:7.1f} -> {growth.end_mib:7.1f} MiB"
            f"  ({growth.growth_mib:+6.1f} MiB, ratio {ratio:.3f}; slope"
            f" {growth.slope_mib_per_min:+.2f} MiB/min)"
        )
    other = [i.other_cores for i in summary.intervals]
    lines.append(
        f"other jobs on the machine: {sum(other) / len(other):.2f} cores on average,"
        f" {max(other):.2f} at most (of {os.cpu_count()})"
    )
    for name, values in summary.metrics.items():
        shown = ", ".join(f"{key} {value:g}" for key, value in sorted(values.items()))
        lines.append(f"/metrics {name}: {shown}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of measurement")
    parser.add_argument("--apis", type=int, default=2, help="API processes")
    parser.add_argument("--rate", type=float, default=5.0, help="simulator events/s per symbol")
    parser.add_argument("--warmup", type=float, help="seconds (default: a fifth, at most 60)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--role", choices=["orchestrator", "client"], default="orchestrator")
    parser.add_argument("--urls", default="")
    parser.add_argument("--first", type=int, default=0)
    args = parser.parse_args()
    if args.role == "client":
        import uvloop

        benchlib.raise_fd_limit()
        uvloop.run(client_main(args))
        return
    opts = Options(
        clients=args.clients,
        duration_s=args.duration,
        apis=args.apis,
        rate=args.rate,
        warmup_s=args.warmup if args.warmup is not None else min(60.0, args.duration / 5),
        sample_s=args.sample,
        client_procs=args.client_procs,
        sample_every=args.sample_every,
    )
    summary = asyncio.run(run(opts))
    print(report(summary, opts), flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
