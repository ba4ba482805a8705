"""The real `quantsaas serve` process: starts, prints its URL, serves, stops cleanly."""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import pytest

URL = re.compile(r"running on (http://[\d.]+:\d+)/")


def start(*args: str) -> subprocess.Popen[str]:
    # serve records history by default: into a temporary directory, not the checkout's ./data
    data_dir = tempfile.mkdtemp(prefix="quantsaas-test-data-")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "QUANTSAAS_DATA_DIR": data_dir}
    return subprocess.Popen(
        [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        found = URL.search(line)
        if found:
            return found.group(1)
    raise AssertionError(
        f"no URL printed; stderr: {process.stderr.read() if process.stderr else ''}"
    )


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = start("--rate", "100", "--symbols", "BTC/USD,ETH/USD", "--seed", "3")
    try:
        yield process, wait_for_url(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_live(base: str) -> httpx.Response:
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(f"{base}/health")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_runs_the_simulator_and_stops_cleanly(
    served: tuple[subprocess.Popen[str], str], stop: signal.Signals
) -> None:
    process, base = served
    health = wait_live(base)
    assert health.status_code == 200
    assert health.json()["feeds"][0]["venue"] == "sim"
    rows = httpx.get(f"{base}/api/market_data").json()["data"]
    assert [row["symbol"] for row in rows] == ["BTC/USD", "ETH/USD"]
    assert all(row["bid"] is not None and row["ask"] is not None for row in rows)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feeds", "nasdaq"], "unknown feed(s) nasdaq"),
        (["--symbols", "DOGE/USD"], "DOGE/USD"),
        (["--rate", "-5"], "sim_rate"),
        (["--port", "70000"], "port"),
        (["--role", "api"], "--role api needs --bus redis://"),
        (["--bus", "nats://127.0.0.1:4222"], "--bus must be memory or redis://"),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    process = start(*args)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert message in stderr
    assert "Traceback" not in stderr
