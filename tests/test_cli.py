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


@pytest.mark.parametrize("command", [["serve"], ["fake-exchange", "binance"]])
def test_a_port_already_in_use_is_one_line_and_exit_2(command: list[str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        env = {**os.environ, "QUANTSAAS_DATA_DIR": tempfile.mkdtemp(prefix="quantsaas-test-")}
        done = subprocess.run(
            [sys.executable, "-m", "quantsaas.cli", *command, "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        line for line in done.stderr.splitlines() if "quantsaas: error:" in line
    ]
    assert "in use" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_deribit_unreachable_serves_the_rest_and_shows_it_down() -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        unreachable = f"http://127.0.0.1:{closed.getsockname()[1]}"
    os.environ["QUANTSAAS_DERIBIT_REST_URL"] = unreachable
    try:
        process = start("--feeds", "sim,deribit", "--rate", "50")
    finally:
        del os.environ["QUANTSAAS_DERIBIT_REST_URL"]
    try:
        base = wait_for_url(process)
        deadline = time.monotonic() + 15
        while True:
            body = httpx.get(f"{base}/health").json()
            feeds = {feed["venue"]: feed for feed in body["feeds"]}
            if feeds["sim"]["live"] and feeds["deribit"]["last_error"]:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.2)
        assert body["status"] == "degraded" and feeds["deribit"]["live"] is False
        assert "cannot fetch the option chain" in feeds["deribit"]["last_error"]
    finally:
        process.kill()
        process.communicate()
