"""WebSocket fan-out: delivered messages/s and delivery latency, ours vs a bare websockets server.

    .venv/bin/python bench/bench_fanout.py [--quick] [--clients 500,1000] [--client-procs 1]
        [--loop asyncio|uvloop] [--kinds quantsaas,bare-ws] [--fixed-msgs 20000]
        [--lib picows|websockets] [--deflate]

What runs (three kinds of process, all on this machine, loopback only):

* the server (bench/benchserver.py), one at a time:
  - `quantsaas`: the real stack as `quantsaas serve` builds it (Engine + create_app + uvicorn,
    ws="websockets-sansio", run by `asyncio.run` like cli.serve, so the stdlib event loop
    unless `--loop uvloop` or the kind is written `quantsaas@uvloop`) with the benchmark feed
    `benchlib.BenchFeed`: four instruments (BTC/USD, ETH/USD, SOL/USD, ADA/USD), a total of
    R events/s (55% book deltas of 1-3 levels, 35% trades, 10% tickers), each stamped
    `ts_recv = time.time_ns()` when published;
  - `bare-ws` (the baseline, always last in `--kinds`): `websockets.asyncio.server` +
    `websockets.broadcast` on the same kind of loop, the same event stream, each event
    encoded once with the service's own wire encoder (same bytes, ~300-400 B per message) and
    broadcast to every subscribed connection. No bus, no per-client queue or task;
* the load generator (this script with `--role client`, `--client-procs` processes): N picows
  connections (or `websockets` ones with `--lib websockets`), each sending `{"op":"subscribe",
  "channels":["trades","book","ticker"],"symbols":[all four]}`, so every event reaches every
  client. Every message is counted; every 10th connection also parses `ts_recv` and records
  latency = receive time - ts_recv (same host clock);
* this orchestrator, which sets the server's rate and reads both sides over stdin/stdout.

Method, per server kind and client count N (kinds run one after the other for each N):
1. connect and subscribe all N clients, wait until every `subscribed` reply has arrived;
2. `fixed`: a fixed offered load, R = fixed_msgs / N events/s (20,000 messages/s in total by
   default), a warm-up, then a measurement window: delivered msgs/s, p50/p99/max latency;
3. ladder: the same offered loads for every kind, 40k, 50k, 62.5k ... x1.25 up to 400k
   messages/s in total, stopping at the first step that is not *sustained*: delivered >= 95%
   of offered, p99 < 200 ms and no client saw a gap or was disconnected. The highest
   sustained delivered rate is the kind's "max sustained" figure (resolution: one step, 25%);
4. `probe`: offer far more than either server can push (600,000 msg/s); the delivered rate
   there is the "saturated" throughput (its latency only shows how deep the queues got).
Ratios ours/bare are taken within the same run. Because throughput on a shared 2-core machine
swings with other people's jobs, every window also reports the server's CPU time per delivered
message (us/msg); its median over the sustained windows is the most noise-robust comparison
("CPU efficiency" = bare us/msg / ours us/msg; 1e6 / us/msg ~ what one core could push).
Per step the CPU of the server and of the load generator (100% = one core) and the CPU used by
everything else on the machine ("other", in cores: kernel work not charged to either process,
and other people's jobs on a shared machine) are shown. A window with "other" above 0.3 cores
is measured again (up to `--attempts` times and 25 s of retries per run, keeping the quietest)
and flagged "(noisy)" if it never got quiet. A load generator near 100% means that step says
more about the client than about the server. `--quick` runs N=200 and a two-step ladder (40k,
80k) only.

`--lib websockets --deflate`: clients offer permessage-deflate, which uvicorn accepts by
default (ws_per_message_deflate=True) and the bare server then accepts too: every message is
compressed once per client, as it would be for browsers (which always offer it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib

HERE = Path(__file__).resolve().parent
CPUS = os.cpu_count() or 1
SYMBOLS = [instrument.symbol for instrument in benchlib.bench_instruments()]
SUBSCRIBE = json.dumps(
    {"op": "subscribe", "channels": ["trades", "book", "ticker"], "symbols": SYMBOLS}
).encode()
DATA_TYPES = {b"tra", b"del", b"tic", b"sna"}
"""First three letters of `type` of data messages: trade, delta, ticker, snapshot."""
DATA_TEXT_TYPES = {kind.decode() for kind in DATA_TYPES}


# ------------------------------------------------------------------------------ load generator


@dataclass
class Tally:
    count: int = 0
    gaps: int = 0
    subscribed: int = 0
    connected: int = 0
    disconnected: int = 0
    latencies_ns: list[int] = field(default_factory=list)


async def client_main(args: argparse.Namespace) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    tally = Tally()
    time_ns = time.time_ns
    text = WSMsgType.TEXT

    class Listener(WSListener):
        def __init__(self, sample: bool) -> None:
            self.sample = sample

        def on_ws_connected(self, transport: WSTransport) -> None:
            tally.connected += 1
            transport.send(text, SUBSCRIBE)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not text:
                if frame.msg_type is WSMsgType.CLOSE:
                    transport.disconnect()
                return
            payload = frame.get_payload_as_bytes()
            kind = payload[9:12]
            if kind in DATA_TYPES:
                tally.count += 1
                if self.sample and kind != b"sna":
                    at = payload.find(b'"ts_recv":')
                    tally.latencies_ns.append(time_ns() - int(payload[at + 10 : at + 29]))
            elif kind == b"gap":
                tally.gaps += 1
            elif kind == b"sub":
                tally.subscribed += 1

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            tally.disconnected += 1

    transports: list[WSTransport] = []
    readers: list[asyncio.Task[None]] = []

    async def connect_picows(index: int) -> None:
        sample = index % args.sample_every == 0

        def factory() -> WSListener:
            return Listener(sample)

        transport, _ = await ws_connect(factory, args.url, websocket_handshake_timeout=30)
        transports.append(transport)

    async def read_websockets(connection: Any, sample: bool) -> None:
        # the same bookkeeping as Listener.on_ws_frame, on str messages
        try:
            async for message in connection:
                kind = message[9:12]
                if kind in DATA_TEXT_TYPES:
                    tally.count += 1
                    if sample and kind != "sna":
                        at = message.find('"ts_recv":')
                        tally.latencies_ns.append(time_ns() - int(message[at + 10 : at + 29]))
                elif kind == "gap":
                    tally.gaps += 1
                elif kind == "sub":
                    tally.subscribed += 1
        except Exception:
            pass
        tally.disconnected += 1

    async def connect_websockets(index: int) -> None:
        from websockets.asyncio.client import connect as ws_client

        compression = "deflate" if args.deflate else None
        connection = await ws_client(
            args.url, compression=compression, open_timeout=30, max_queue=None
        )
        tally.connected += 1
        await connection.send(SUBSCRIBE.decode())
        sample = index % args.sample_every == 0
        readers.append(asyncio.create_task(read_websockets(connection, sample)))

    connect = connect_websockets if args.lib == "websockets" else connect_picows

    batch = 50
    for first in range(0, args.clients, batch):
        await asyncio.gather(*(connect(i) for i in range(first, min(first + batch, args.clients))))
    deadline = time.monotonic() + 30
    while tally.subscribed < args.clients and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(f"READY {tally.subscribed}", flush=True)

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            break
        if line == "reset":
            tally.count = tally.gaps = tally.disconnected = 0
            tally.latencies_ns = []
            started = time.monotonic()
            print("ok", flush=True)
        elif line == "report":
            elapsed = time.monotonic() - started
            report = {
                "elapsed": elapsed,
                "count": tally.count,
                "gaps": tally.gaps,
                "disconnected": tally.disconnected,
                "latencies_us": [ns // 1000 for ns in tally.latencies_ns],
            }
            print(json.dumps(report), flush=True)
    for transport in transports:
        transport.disconnect()
    for reader in readers:
        reader.cancel()


# -------------------------------------------------------------------------------- orchestrator


class Proc:
    """A child process spoken to by lines on stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @classmethod
    async def start(cls, name: str, *argv: str) -> Proc:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 26,
        )
        return cls(process, name)

    async def line(self, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"{self.name} exited (code {self.process.returncode})")
        return raw.decode().strip()

    async def ask(self, command: str, timeout: float = 60) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.line(timeout)

    def cpu(self) -> float:
        return benchlib.cpu_seconds(self.process.pid)

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 8)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()


@dataclass
class Step:
    label: str
    rate: float
    """Offered events/s."""
    offered: float
    """Offered messages/s to all clients together (rate x N)."""
    published: float
    delivered: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    gaps: int
    disconnected: int
    server_cpu: float
    client_cpu: float
    machine_busy: float
    """Busy fraction of all CPUs of the machine (1.0 = every core busy)."""
    other_cores: float
    """CPU used by everything else on the machine (kernel softirq work included), in cores."""
    server_us_per_msg: float
    """Server CPU time per delivered message, in microseconds: the noise-robust cost figure."""
    samples: int
    loop_lag_max_ms: float
    """Largest stall of the server's event loop during the window (a 5 ms sleeper's overshoot)."""

    @property
    def sustained(self) -> bool:
        return (
            self.delivered >= 0.95 * self.offered
            and self.p99_ms < 200
            and self.gaps == 0
            and self.disconnected == 0
        )

    def row(self) -> str:
        mark = "yes" if self.sustained else "NO"
        if self.other_cores > NOISY_CORES:
            mark += " (noisy)"
        return (
            f"  {self.label:<9} rate {self.rate:8.1f} ev/s  offered {self.offered:9.0f}  "
            f"published {self.published:7.1f} ev/s  delivered {self.delivered:9.0f} msg/s  "
            f"p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:8.2f} ms  max {self.max_ms:8.1f} ms  "
            f"loop stall max {self.loop_lag_max_ms:6.1f} ms  "
            f"gaps {self.gaps:5d} disc {self.disconnected:4d}  "
            f"cpu srv {self.server_cpu:4.0%} ({self.server_us_per_msg:5.1f} us/msg) "
            f"cli {self.client_cpu:4.0%} "
            f"other {self.other_cores:4.2f} cores  sustained {mark}"
        )


@dataclass
class KindResult:
    kind: str
    clients: int
    fixed: Step
    steps: list[Step]
    probe: Step

    @property
    def max_sustained(self) -> Step | None:
        passing = [step for step in self.steps if step.sustained]
        return max(passing, key=lambda step: step.delivered) if passing else None

    @property
    def capacity(self) -> float:
        """Delivered rate when overloaded (the probe), or the best step if that was higher."""
        return max(step.delivered for step in [self.probe, *self.steps])

    @property
    def us_per_msg(self) -> float:
        """Server CPU per delivered message, median over the sustained windows (fixed incl.)."""
        values = sorted(s.server_us_per_msg for s in [self.fixed, *self.steps] if s.sustained)
        return values[len(values) // 2] if values else float("nan")

    @property
    def noisy(self) -> bool:
        return any(step.other_cores > NOISY_CORES for step in [self.fixed, self.probe, *self.steps])


async def measure(
    label: str,
    server: Proc,
    clients: list[Proc],
    n_clients: int,
    rate: float,
    warm: float,
    window: float,
) -> Step:
    await server.ask(f"rate {rate}")
    await asyncio.sleep(warm)
    for client in clients:
        await client.ask("reset")
    before = json.loads(await server.ask("stats"))
    cpu0 = (server.cpu(), sum(c.cpu() for c in clients), time.monotonic())
    machine0 = benchlib.machine_cpu()
    await asyncio.sleep(window)
    machine1 = benchlib.machine_cpu()
    reports = [json.loads(await client.ask("report")) for client in clients]
    after = json.loads(await server.ask("stats"))
    cpu1 = (server.cpu(), sum(c.cpu() for c in clients), time.monotonic())
    wall = cpu1[2] - cpu0[2]
    busy = (machine1[0] - machine0[0]) / max(machine1[1] - machine0[1], 1e-9)
    elapsed = max(report["elapsed"] for report in reports)
    latencies = sorted(v for report in reports for v in report["latencies_us"])
    delivered = sum(report["count"] for report in reports) / elapsed
    return Step(
        label=label,
        rate=rate,
        offered=rate * n_clients,
        published=(after["published"] - before["published"]) / (after["t"] - before["t"]),
        delivered=delivered,
        p50_ms=benchlib.percentile(latencies, 50) / 1000,
        p99_ms=benchlib.percentile(latencies, 99) / 1000,
        max_ms=(latencies[-1] / 1000) if latencies else float("nan"),
        gaps=sum(report["gaps"] for report in reports),
        disconnected=sum(report["disconnected"] for report in reports),
        server_cpu=(cpu1[0] - cpu0[0]) / wall,
        client_cpu=(cpu1[1] - cpu0[1]) / wall,
        machine_busy=busy,
        other_cores=max(0.0, busy * CPUS - (cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) / wall),
        server_us_per_msg=(cpu1[0] - cpu0[0]) / max(delivered * wall, 1.0) * 1e6,
        samples=len(latencies),
        loop_lag_max_ms=float(after.get("loop_lag_max_ms", float("nan"))),
    )


NOISY_CORES = 0.3
"""A window during which the rest of the machine used more CPU than this is measured again."""


async def measure_clean(
    label: str,
    server: Proc,
    clients: list[Proc],
    n_clients: int,
    rate: float,
    warm: float,
    window: float,
    opts: argparse.Namespace,
) -> Step:
    """`measure`, repeated while other jobs disturbed the window (up to `opts.attempts` tries,
    within a retry budget of `opts.retry_budget` seconds for the whole run); keeps the
    quietest try."""
    best: Step | None = None
    for attempt in range(opts.attempts):
        started = time.monotonic()
        step = await measure(label, server, clients, n_clients, rate, warm, window)
        if attempt:
            opts.retry_budget -= time.monotonic() - started
        if best is None or step.other_cores < best.other_cores:
            best = step
        if step.other_cores <= NOISY_CORES or opts.retry_budget <= 0:
            break
        print(f"{step.row()}  [noisy: measuring again]", flush=True)
        await server.ask("rate 0")
        await asyncio.sleep(1.0)
        opts.retry_budget -= 1.0
    assert best is not None
    return best


async def run_kind(label: str, n_clients: int, opts: argparse.Namespace) -> KindResult:
    spec, _, loop = label.partition("@")
    kind, *flags = spec.split("+")
    argv = ["--kind", kind, "--loop", loop or opts.loop]
    if "norecord" in flags:
        argv.append("--no-record")
    if opts.deflate:
        argv.append("--deflate")
    server = await Proc.start(f"server {label}", str(HERE / "benchserver.py"), *argv)
    clients: list[Proc] = []
    try:
        port = int((await server.line()).split()[1])
        url = f"ws://127.0.0.1:{port}/ws"
        shares = [n_clients // opts.client_procs] * opts.client_procs
        shares[0] += n_clients - sum(shares)
        for index, share in enumerate(shares):
            clients.append(
                await Proc.start(
                    f"client {index}",
                    str(Path(__file__).resolve()),
                    "--role",
                    "client",
                    "--url",
                    url,
                    "--clients",
                    str(share),
                    "--lib",
                    opts.lib,
                    *(["--deflate"] if opts.deflate else []),
                )
            )
        ready = [int((await client.line(90)).split()[1]) for client in clients]
        if sum(ready) != n_clients:
            raise RuntimeError(f"{label}: only {sum(ready)} of {n_clients} clients subscribed")
        print(f"[{label} N={n_clients}] {n_clients} clients subscribed", flush=True)

        warm, window = opts.warm, opts.window

        async def window_at(label: str, offered: float, warm_s: float = warm) -> Step:
            step = await measure_clean(
                label, server, clients, n_clients, offered / n_clients, warm_s, window, opts
            )
            print(step.row(), flush=True)
            return step

        fixed = await window_at("fixed", opts.fixed_msgs)
        steps: list[Step] = []
        for offered in opts.ladder:
            steps.append(await window_at(f"{offered / 1000:.0f}k", offered))
            if not steps[-1].sustained:
                break
        probe = await window_at("probe", opts.probe_msgs, 0.5)
        return KindResult(label, n_clients, fixed, steps, probe)
    finally:
        for client in clients:
            await client.stop()
        await server.stop()


def _ratio(ours: float, bare: float) -> str:
    return f"{ours / bare:.2f}" if bare else "n/a"


async def orchestrate(opts: argparse.Namespace) -> None:
    benchlib.raise_fd_limit()
    print(f"bench_fanout: {benchlib.machine_load()}; loop {opts.loop}", flush=True)
    started = time.monotonic()
    summary: list[list[KindResult]] = []
    for n_clients in opts.clients:
        summary.append([await run_kind(kind, n_clients, opts) for kind in opts.kinds])

    print(f"\n== summary ({time.monotonic() - started:.0f} s; {benchlib.machine_load()})")
    print(
        "fixed offered load: "
        f"{opts.fixed_msgs:.0f} msg/s in total; target p99 < 50 ms and ours/bare >= 0.60 at"
        " saturation"
    )
    for results in summary:
        bare = results[-1]
        print(f"N={bare.clients} clients")
        for result in results:
            fixed = result.fixed
            best = result.max_sustained
            best_text = (
                f"max sustained {best.delivered:9.0f} msg/s (p50 {best.p50_ms:.2f} ms, "
                f"p99 {best.p99_ms:.2f} ms)"
                if best
                else "max sustained: none of the steps"
            )
            noisy = " (some windows noisy)" if result.noisy else ""
            print(
                f"  {result.kind:<18}{noisy}: fixed -> delivered {fixed.delivered:8.0f} msg/s, p50 "
                f"{fixed.p50_ms:6.2f} ms, p99 {fixed.p99_ms:7.2f} ms | saturated "
                f"{result.capacity:9.0f} msg/s | {best_text} | server CPU "
                f"{result.us_per_msg:.1f} us/msg (one core ~ {1e6 / result.us_per_msg:,.0f} msg/s)"
            )
        bare_best = bare.max_sustained.delivered if bare.max_sustained else 0.0
        for ours in results[:-1]:
            ours_best = ours.max_sustained.delivered if ours.max_sustained else 0.0
            print(
                f"  ratio {ours.kind}/{bare.kind}: saturated throughput "
                f"{_ratio(ours.capacity, bare.capacity)}, max sustained "
                f"{_ratio(ours_best, bare_best)}, fixed-load p99 "
                f"{_ratio(ours.fixed.p99_ms, bare.fixed.p99_ms)}, CPU efficiency (bare us/msg / "
                f"ours us/msg) {_ratio(bare.us_per_msg, ours.us_per_msg)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small client count, short runs")
    parser.add_argument("--clients", help="comma-separated client counts (default 500,1000)")
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--fixed-msgs", type=float, default=20_000.0)
    parser.add_argument("--probe-msgs", type=float, default=600_000.0)
    parser.add_argument(
        "--kinds",
        default="quantsaas,bare-ws",
        help="servers to compare, the baseline last; KIND[+norecord][@LOOP]: +norecord runs"
        " quantsaas without the history recorder, @LOOP overrides --loop for that kind",
    )
    parser.add_argument("--lib", choices=["picows", "websockets"], default="picows")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="clients offer and servers accept permessage-deflate (needs --lib websockets)",
    )
    parser.add_argument("--role", choices=["orchestrator", "client"], default="orchestrator")
    parser.add_argument("--url", default="")
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument(
        "--attempts", type=int, help="tries per window while the machine is busy (default 3)"
    )
    opts = parser.parse_args()
    if opts.role == "client":
        import uvloop

        benchlib.raise_fd_limit()
        opts.clients = int(opts.clients)
        uvloop.run(client_main(opts))
        return
    if opts.deflate and opts.lib != "websockets":
        parser.error("--deflate needs --lib websockets (picows does not compress)")
    opts.kinds = [kind for kind in opts.kinds.split(",") if kind]
    opts.attempts = opts.attempts or (1 if opts.quick else 3)
    default_clients = "200" if opts.quick else "500,1000"
    opts.clients = [int(part) for part in (opts.clients or default_clients).split(",")]
    opts.warm, opts.window = (0.4, 1.2) if opts.quick else (0.7, 2.0)
    first, factor, last = (40_000.0, 2.0, 80_000.0) if opts.quick else (40_000.0, 1.25, 400_000.0)
    opts.ladder = [first * factor**k for k in range(30) if first * factor**k <= last * 1.0001]
    opts.retry_budget = 0.0 if opts.quick else 25.0
    asyncio.run(orchestrate(opts))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
