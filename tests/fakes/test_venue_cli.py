"""`quantsaas fake-exchange` as a real process: prints its URL, serves, stops on SIGTERM."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import httpx
import pytest

from quantsaas.cli import main


def test_fake_exchange_runs_by_hand_and_stops_cleanly() -> None:
    command = [sys.executable, "-m", "quantsaas.cli", "fake-exchange", "binance", "--port", "0"]
    with subprocess.Popen(
        [*command, "--log-level", "warning"], stdout=subprocess.PIPE, text=True
    ) as process:
        _check_and_stop(process)


def _check_and_stop(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        assert match, line
        body = httpx.get(
            f"http://127.0.0.1:{match[1]}/api/v3/depth", params={"symbol": "BTCUSDT"}, timeout=5
        ).json()
        assert body["lastUpdateId"] >= 1_000_000 and body["bids"] and body["asks"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_fault_that_does_not_apply_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fake-exchange", "coinbase", "--fault", "stale-snapshot"]) == 2
    assert "does not apply" in capsys.readouterr().err
