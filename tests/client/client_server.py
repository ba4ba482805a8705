"""A real `quantsaas serve` process on loopback for the client tests: started, killed and
started again on the same port and data directory (a restart, as a user's client sees one)."""

from __future__ import annotations

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
