"""A real `quantsaas serve` process on loopback for the client tests: started, killed and
started again on the same port and data directory (a restart, as a user's client sees one)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers

SIM = ("--symbols", "BTC/USD,ETH/USD", "--seed", "5", "--flush", "0.2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    directory: Path
    args: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)
    """Added to the environment; None removes a variable."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    live_ns: int = 0
    """When the server last went live (wall clock, ns)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / f"serve-{self.starts}.log"

    def start(self, timeout: float = 40.0) -> None:
        self.starts += 1
        data = self.directory / "data"
        command = [sys.executable, "-m", "quantsaas.cli", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data), "--log-level", "warning", *self.args]
        with self.log.open("wb") as sink:
            self.process = subprocess.Popen(
                command,
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.environment(),
            )
        deadline = time.monotonic() + timeout
        while "running on" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        while httpx.get(f"{self.base}/health", timeout=5).status_code != 200:
            if time.monotonic() > deadline:
                raise AssertionError("the simulator did not go live")
            time.sleep(0.1)
        self.live_ns = time.time_ns()

    def environment(self) -> dict[str, str]:
        merged: dict[str, str | None] = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        return {name: value for name, value in merged.items() if value is not None}

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-stream, no close frames."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(
    directory: Path, *args: str, env: dict[str, str | None] | None = None
) -> Iterator[Server]:
    """A started server (the simulator, recording into `directory`/data), stopped afterwards."""
    server = Server(directory, (*SIM, *args), env or {})
    try:
        server.start()
        yield server
    finally:
        server.stop()


TIERS = """
[tiers.pro]
book_interval_ms = 0
ws_connections = 5
ws_subscriptions = 200
ws_inbound_per_s = 20
history_days = 90
requests = 100000
window_s = 60
api_keys = 10

[tiers.tiny]
book_interval_ms = 0
ws_connections = 5
ws_subscriptions = 20
ws_inbound_per_s = 20
history_days = 1
requests = 5
window_s = 60
api_keys = 5

[tiers.free]
symbols = ["BTC/USD"]
channels = ["trades", "ticker", "book", "candles", "history"]
book_interval_ms = 300
ws_connections = 1
ws_subscriptions = 20
ws_inbound_per_s = 5
history_days = 1
requests = 1000
window_s = 60
api_keys = 2
"""


@dataclass
class Closed:
    """A closed server (no anonymous access) and a key per user: pro, revoked (pro), tiny (a
    budget of 5 requests a minute) and free (BTC/USD only, sampled books, 5 messages/s)."""

    server: Server
    keys: dict[str, str]
    key_ids: dict[str, str]
    user_ids: dict[str, int]


async def _make_users(url: str, tiers_file: Path, closed: Closed) -> None:
    accounts = await Accounts.open(url, load_tiers(tiers_file))
    try:
        for name, tier in (("pro", "pro"), ("revoked", "pro"), ("tiny", "tiny"), ("free", "free")):
            user = await accounts.add_user(f"{name}@example.com", "a long enough password", tier)
            closed.keys[name], view = await accounts.create_key(user.id, "test")
            closed.key_ids[name] = view.key_id
            closed.user_ids[name] = user.id
    finally:
        await accounts.close()


@contextmanager
def closed_serving(directory: Path) -> Iterator[Closed]:
    tiers_file = directory / "tiers.toml"
    tiers_file.write_text(TIERS)
    url = f"sqlite+aiosqlite:///{directory}/accounts.db"
    env: dict[str, str | None] = {
        "QUANTSAAS_ANONYMOUS_TIER": None,
        "QUANTSAAS_TIERS_FILE": str(tiers_file),
        "QUANTSAAS_ACCOUNTS_URL": url,
    }
    server = Server(directory, (*SIM, "--rate", "100"), env)
    closed = Closed(server, {}, {}, {})
    asyncio.run(_make_users(url, tiers_file, closed))
    try:
        server.start()
        yield closed
    finally:
        server.stop()
