"""Start-up time and idle memory of `quantsaas serve`, per role, against baselines of the same run.

    .venv/bin/python bench/bench_startup.py [--quick] [--runs N] [--settle S]
                                            [--compare DIR] [--importtime]

Each measured process is started fresh; the figures are:

* **health**: from the spawn of the process to the first `200` from `GET /health` (polled every
  5 ms over a raw socket), and the CPU time the process had used by then (**cpu**, from /proc:
  less sensitive to other jobs than the wall time, on a shared machine). For `serve` that means
  imports, the runtime and the app built, accounts opened (migrations checked), the server
  listening and, for `all` and `ingest`, the simulator feed live; for `api`, the Redis relay
  caught up.
* **RSS**: VmRSS (with its anonymous and file-backed parts) `--settle` seconds after that first
  200, the process idle (simulator feed running, no client; the recorder has flushed by then).

Processes, interleaved run by run (the median of `--runs` is printed):

* `python`: the interpreter alone (`python -c` printing a line), time to that line;
* `fastapi`: a FastAPI app with one `/health` route on uvicorn (`fastapi.FastAPI` + `uvicorn.run`),
  the floor of any FastAPI service; the ratios are against it;
* `all`: `quantsaas serve` (simulator, recorder on, default settings), in a data directory
  reused across runs (the first start, with migrations and the admin account, is not measured);
* `ingest`, `api`: `quantsaas serve --role ingest|api --bus redis://...` on a redis-server
  started here (`ingest` also records; `api` relays an unmeasured ingest process started here,
  and is probed on /readyz, since its /health has no feed to report live);
* `all-norecord` (only when named in `--roles`): `quantsaas serve --no-record`.

`--compare DIR` runs the `serve` roles a second time with `PYTHONPATH=DIR/src` (another checkout
of this repository, e.g. `git archive <commit> src | tar -x -C DIR`), so an older version is
measured in the same run with the same interpreter and packages. `--importtime` starts each
role once more with `-X importtime` and prints its heaviest top-level imports (cumulative) and
which heavy packages it had imported by the time of the RSS reading.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchlib import cpu_seconds, machine_load

VENV_BIN = Path(sys.executable).parent
HEAVY = (
    "scipy",
    "duckdb",
    "pyarrow",
    "pyarrow.parquet",
    "alembic",
    "sqlalchemy",
    "redis",
    "httpx",
    "quantsaas.feeds",
    "quantsaas.engine",
    "quantsaas.fakes",
)
"""Packages the --importtime report says are present or absent in each role."""
FASTAPI_APP = """
import sys, fastapi, uvicorn
app = fastapi.FastAPI()
@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""
SERVE_ENV = {"QUANTSAAS_BOOTSTRAP_ADMIN": "false", "PYTHONUNBUFFERED": "1"}


@dataclass
class Sample:
    start_s: float
    cpu_s: float
    """CPU time (user + system) the process had used by its first 200: less sensitive than the
    wall time to other jobs on a shared machine."""
    rss_kib: int
    anon_kib: int
    file_kib: int
    imports: str = ""


@dataclass
class Kind:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    http: bool = True
    probe: str = "/health"
    samples: list[Sample] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def probe_status(port: int, path: str) -> int:
    """The status code of GET `path`, 0 when nothing answers yet."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request.encode())
            head = sock.recv(64)
    except OSError:
        return 0
    parts = head.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def status_kib(pid: int) -> tuple[int, int, int]:
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                values[name] = int(rest.split()[0])
    return values["VmRSS"], values["RssAnon"], values["RssFile"] + values.get("RssShmem", 0)


def measure(kind: Kind, settle: float, importtime: bool = False) -> Sample:
    port = free_port()
    argv = [arg.replace("{port}", str(port)) for arg in kind.argv]
    env = {**os.environ, **kind.env}
    if importtime:
        env["PYTHONPROFILEIMPORTTIME"] = "1"  # = python -X importtime
    log = tempfile.TemporaryFile()
    started = time.perf_counter()
    process = subprocess.Popen(
        argv,
        cwd=kind.cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if not kind.http else subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = started + 60
        if kind.http:
            while probe_status(port, kind.probe) != 200:
                if process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"{kind.name} did not become healthy: {_tail(log)}")
                time.sleep(0.005)
        else:
            assert process.stdout is not None
            process.stdout.readline()
        ready = time.perf_counter() - started
        cpu = cpu_seconds(process.pid)
        time.sleep(settle)
        rss, anon, file = status_kib(process.pid)
        imports = _tail(log, 10**9) if importtime else ""
        return Sample(ready, cpu, rss, anon, file, imports)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(log: IO[bytes], size: int = 600) -> str:
    """What the child wrote to stderr so far (its last `size` characters)."""
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]


def top_imports(text: str, count: int) -> list[tuple[int, str]]:
    """(cumulative us, module) of the top-level imports in -X importtime output."""
    found = []
    for line in _import_lines(text):
        _, cumulative, name = line.split("|")
        if name.startswith(" ") and not name.startswith("  "):  # nested imports are indented
            found.append((int(cumulative), name.strip()))
    return sorted(found, reverse=True)[:count]


def imported(text: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in _import_lines(text)}


def _import_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith("import time:") and line.count("|") == 2 and "cumulative" not in line
    ]


def redis_server(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    args = ["--port", str(port), "--bind", "127.0.0.1", "--dir", directory, "--save", ""]
    process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def kinds(opts: argparse.Namespace, work: Path, bus: str) -> list[Kind]:
    python = sys.executable
    found = [
        Kind("python", [python, "-c", "print('ready', flush=True); import time; time.sleep(60)"])
    ]
    found[0].http = False
    found.append(Kind("fastapi", [python, "-c", FASTAPI_APP, "{port}"]))
    serve = [str(VENV_BIN / "quantsaas"), "serve", "--port", "{port}"]
    versions = [("", None)] + ([("base ", Path(opts.compare).resolve())] if opts.compare else [])
    for label, checkout in versions:
        env = dict(SERVE_ENV)
        if checkout is not None:
            env["PYTHONPATH"] = str(checkout / "src")
        for role in opts.roles.split(","):
            argv = serve + ([] if role == "all" else ["--role", role, "--bus", bus])
            if role == "all-norecord":  # what the recorder's PyArrow costs
                argv = [*serve, "--no-record"]
            cwd = work / f"{label.strip() or 'head'}-{role}"
            cwd.mkdir(parents=True, exist_ok=True)
            kind = Kind(f"{label}{role}", argv, env, str(cwd))
            if role == "api":  # /health is 503 without feeds: ready = relay up, data arriving
                kind.probe = "/readyz"
            found.append(kind)
    return found


def report(found: list[Kind]) -> None:
    base = {k.name: k for k in found}["fastapi"]
    t0 = statistics.median(s.start_s for s in base.samples)
    c0 = statistics.median(s.cpu_s for s in base.samples)
    r0 = statistics.median(s.rss_kib for s in base.samples)
    print(
        f"\n{'process':<18} {'health s':>8} {'x':>5} {'cpu s':>6} {'x':>5} {'RSS MiB':>7}"
        f" {'x':>5} {'anon':>6} {'file':>6}   (median of {len(base.samples)}; x = / fastapi)"
    )
    for kind in found:
        start = statistics.median(s.start_s for s in kind.samples)
        cpu = statistics.median(s.cpu_s for s in kind.samples)
        rss = statistics.median(s.rss_kib for s in kind.samples)
        anon = statistics.median(s.anon_kib for s in kind.samples)
        file = statistics.median(s.file_kib for s in kind.samples)
        print(
            f"{kind.name:<18} {start:8.3f} {start / t0:5.2f} {cpu:6.2f} {cpu / c0:5.2f}"
            f" {rss / 1024:7.1f} {rss / r0:5.2f} {anon / 1024:6.1f} {file / 1024:6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run, 2 s settle")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--settle", type=float, default=5.0, help="s idle before reading RSS")
    parser.add_argument("--roles", default="all,ingest,api")
    parser.add_argument("--compare", help="another checkout (DIR/src) run beside this one")
    parser.add_argument("--importtime", action="store_true")
    opts = parser.parse_args()
    if opts.quick:
        opts.runs, opts.settle = 1, 2.0
    print(f"bench_startup: {machine_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="quantsaas-bench-startup-") as directory:
        work = Path(directory)
        redis, bus = redis_server(directory)
        publisher = None
        try:
            if "api" in opts.roles.split(","):  # the api role relays what an ingest publishes
                publisher = subprocess.Popen(
                    [str(VENV_BIN / "quantsaas"), "serve", "--port", "0", "--no-record"]
                    + ["--role", "ingest", "--bus", bus],
                    cwd=directory,
                    env={**os.environ, **SERVE_ENV},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            found = kinds(opts, work, bus)
            for kind in found:  # first starts: migrations, caches; not measured
                if kind.cwd is not None:
                    first = measure(kind, 0.0)
                    print(f"first start of {kind.name}: {first.start_s:.3f} s", flush=True)
            for run in range(opts.runs):
                for kind in found:
                    kind.samples.append(measure(kind, opts.settle))
                print(f"run {run + 1}/{opts.runs} done ({machine_load()})", flush=True)
            report(found)
            if opts.importtime:
                for kind in found:
                    if kind.cwd is not None:
                        print_imports(kind, measure(kind, opts.settle, importtime=True))
        finally:
            if publisher is not None:
                publisher.terminate()
                publisher.wait()
            redis.kill()
            redis.wait()


def print_imports(kind: Kind, sample: Sample) -> None:
    names = imported(sample.imports)
    present = [h for h in HEAVY if h in names]
    absent = [h for h in HEAVY if h not in names]
    print(
        f"\n-X importtime, {kind.name} (health {sample.start_s:.3f} s, RSS "
        f"{sample.rss_kib / 1024:.1f} MiB): {len(names)} modules by the RSS reading"
    )
    print(f"  imported: {', '.join(present) or '-'}; not imported: {', '.join(absent) or '-'}")
    for cumulative, name in top_imports(sample.imports, 12):
        print(f"  {cumulative / 1000:8.1f} ms  {name}")


if __name__ == "__main__":
    main()
