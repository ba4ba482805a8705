"""The servers under load in the soak test (bench/soak.py): redis-server, one ingest and the
API processes of `quantsaas serve`, the tiers file that lets every client in, and the few
/metrics values read from them.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from soak import Options

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the scale-out test's redis-server and serve helpers
from helpers import RedisServer  # noqa: E402
from test_scale_out import Served, serve, wait_ready  # noqa: E402

SERVE_ENV = {"QUANTSAAS_ANONYMOUS_TIER": "demo"}
"""Set for every `quantsaas serve` started here: anonymous clients get the demo tier."""
LOAD_LIMITS = {"ws_connections": 100_000, "requests": 10_000_000}
"""The demo tier's per-caller limits, raised for the load test (`load_tiers`): every client
connects from 127.0.0.1, so the per-IP limits of a public demo would refuse all but a few."""


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # str, int and float are written alike in TOML and JSON


def load_tiers(directory: Path) -> Path | None:
    """A tiers file (`QUANTSAAS_TIERS_FILE`): the packaged tiers with the demo tier's
    `LOAD_LIMITS` raised; None when this version of the service has no tiers."""
    import tomllib
    from importlib import resources

    try:
        text = resources.files("quantsaas.accounts").joinpath("tiers.toml").read_text("utf-8")
    except (ModuleNotFoundError, OSError):
        return None
    tables = tomllib.loads(text)
    tables["tiers"]["demo"].update(LOAD_LIMITS)
    lines: list[str] = []
    for name, tier in tables["tiers"].items():
        lines.append(f"[tiers.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in tier.items()]
    for section, table in tables.items():
        if section != "tiers":
            lines.append(f"[{section}]")
            lines += [f"{json.dumps(key)} = {_toml_value(value)}" for key, value in table.items()]
    path = directory / "tiers.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


METRICS = {
    "quantsaas_bus_published_messages_total": "bus_published",
    "quantsaas_ws_clients": "ws_clients",
    "quantsaas_ws_messages_sent_total": "ws_sent",
    "quantsaas_bus_dropped_messages_total": "bus_dropped",
    "quantsaas_redis_connected": "redis_connected",
    "quantsaas_redis_reconnects_total": "redis_reconnects",
    "quantsaas_redis_pending_messages": "redis_pending",
    "quantsaas_redis_relay_lag_seconds": "redis_relay_lag_s",
}


def scrape(client: httpx.Client, served: Served) -> dict[str, float]:
    """The `METRICS` values of one process (labelled series summed) plus the stream counts."""
    text = client.get(f"{served.base}/metrics", timeout=10).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = METRICS.get(sample.name)
            if name is not None:
                values[name] = values.get(name, 0.0) + sample.value
            elif sample.name == "quantsaas_redis_entries_published_total":
                values[f"redis_published_{sample.labels['kind']}"] = sample.value
            elif sample.name == "quantsaas_redis_entries_relayed_total":
                values[f"redis_relayed_{sample.labels['kind']}"] = sample.value
    return values


def bus_messages(text: str) -> int:
    """Messages published on the bus, all channels (option tickers and analytics included)."""
    total = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "quantsaas_bus_published_messages_total":
                total += int(sample.value)
    return total


class Cluster:
    """redis-server, one ingest and `apis` API processes of `quantsaas serve`."""

    def __init__(self, tmp: Path, opts: Options) -> None:
        self.tmp = tmp
        self.opts = opts
        self.redis = RedisServer(tmp)
        self.ingest: Served | None = None
        self.apis: list[Served] = []

    def start(self) -> None:
        self.redis.start()
        env = {**SERVE_ENV, **self.opts.serve_env}
        tiers = load_tiers(self.tmp)
        if tiers is not None:
            env["QUANTSAAS_TIERS_FILE"] = str(tiers)
        feed = ("--rate", str(self.opts.rate), "--seed", "11", "--log-level", "warning")
        bus = ("--bus", self.redis.url)
        names = ["ingest", *(f"api{i}" for i in range(self.opts.apis))]
        started = [self._serve(name, env, *bus, *feed) for name in names]
        self.ingest, *self.apis = started
        for served in self.servers:
            served.wait_url()
        for served in self.servers:
            wait_ready(served, 200, 30)

    def _serve(self, name: str, env: dict[str, str], *args: str) -> Served:
        """`quantsaas serve --role ingest|api` (test_scale_out.serve) with `env` added and its
        own accounts database in the temporary directory."""
        role = "ingest" if name == "ingest" else "api"
        saved = dict(os.environ)
        os.environ.update(env)
        os.environ["QUANTSAAS_ACCOUNTS_URL"] = f"sqlite+aiosqlite:///{self.tmp}/{name}.db"
        try:
            return serve(self.tmp, name, "--role", role, *args)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    @property
    def servers(self) -> list[Served]:
        return [server for server in [self.ingest, *self.apis] if server is not None]

    def pids(self) -> dict[str, int]:
        pids = {"ingest": self.ingest.process.pid} if self.ingest else {}
        pids.update({f"api{i}": api.process.pid for i, api in enumerate(self.apis)})
        if self.redis.process is not None:
            pids["redis"] = self.redis.process.pid
        return pids

    def stop(self) -> None:
        for served in self.servers:
            if served.process.poll() is None:
                served.process.terminate()
        for served in self.servers:
            try:
                served.process.wait(timeout=15)
            except Exception:
                served.process.kill()
                served.process.wait()
        self.redis.stop()
