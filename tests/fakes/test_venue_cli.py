"""`quantsaas fake-exchange` as a real process: prints its URL (and CA with --tls), serves,
stops on SIGTERM; products it cannot simulate are a clear error unless replayed."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import sys
from pathlib import Path

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


def test_tls_prints_its_ca_and_serves_https(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "quantsaas.cli", "fake-exchange", "binance", "--port", "0"]
    command += ["--tls", "--tls-dir", str(tmp_path), "--log-level", "warning"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            listening, ca_line = process.stdout.readline(), process.stdout.readline()
            match = re.search(r"wss://127\.0\.0\.1:(\d+)", listening)
            assert match, listening
            ca = ca_line.split("CA certificate:")[1].strip()
            assert Path(ca) == tmp_path / "ca.pem"
            url = f"https://localhost:{match[1]}/api/v3/exchangeInfo"
            symbols = httpx.get(url, verify=ssl_context(ca), timeout=5).json()["symbols"]
            assert [s["symbol"] for s in symbols] == ["BTCUSDT", "ETHUSDT"]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


def ssl_context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)


def test_unsimulated_product_is_a_clear_error_unless_replayed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["fake-exchange", "coinbase", "--symbols", "SKL-GBP"]) == 2
    assert "--replay" in capsys.readouterr().err
    assert main(["fake-exchange", "deribit", "--replay", "/nonexistent/file.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_any_product_can_be_replayed() -> None:
    sample = Path(__file__).parents[1] / "feeds" / "samples" / "coinbase_exchange_level2.jsonl"
    command = [sys.executable, "-m", "quantsaas.cli", "fake-exchange", "coinbase", "--port", "0"]
    command += ["--symbols", "SKL-GBP", "--replay", str(sample), "--log-level", "warning"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            match = re.search(r"ws://127\.0\.0\.1:(\d+)", process.stdout.readline())
            assert match
            rows = httpx.get(f"http://127.0.0.1:{match[1]}/products", timeout=5).json()
            assert [row["id"] for row in rows] == ["SKL-GBP"]
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


def test_the_parser_offers_exactly_the_venues_and_faults_of_the_fakes() -> None:
    # venue_cli names them itself so that building the parser (every `serve`) loads no fake
    from quantsaas import replay_raw, venue_cli
    from quantsaas.fakes.deribit import DERIBIT_FAULTS
    from quantsaas.fakes.kraken import KRAKEN_FAULTS
    from quantsaas.fakes.server import FAULTS

    assert venue_cli.VENUES == replay_raw.VENUES
    assert sorted(venue_cli.FAULT_NAMES) == sorted({*FAULTS, *KRAKEN_FAULTS, *DERIBIT_FAULTS})
