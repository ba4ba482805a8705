"""`quantsaas replay-raw`: raw frame files through parser and book code, JSON on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samples_path import SAMPLES

from quantsaas.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["replay-raw", *argv]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    result: dict = json.loads(out)  # type: ignore[type-arg]
    return result


def test_binance_depth_with_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(
        capsys,
        "--venue",
        "binance",
        "--snapshot",
        str(SAMPLES / "binance_depth_snapshot.jsonl"),
        str(SAMPLES / "binance_depth.jsonl"),
    )
    assert result["frames"] == 150
    assert result["events"] == {"BookDelta": 149, "BookSnapshot": 1}
    assert (result["gaps"], result["resyncs"], result["checksum_failures"]) == (0, 0, 0)
    book = result["books"]["NKNUSDT"]
    assert len(book["bids"]) == 10 and len(book["asks"]) == 10
    assert book["bids"][0] == ["0.35270000", "9602.00000000"]
    assert book["asks"][0] == ["0.35310000", "152.00000000"]
    bids = [float(p) for p, _ in book["bids"]]
    assert bids == sorted(bids, reverse=True)


def test_binance_gap_is_counted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    frames = (SAMPLES / "binance_depth.jsonl").read_bytes().splitlines()
    gapped = tmp_path / "gapped.jsonl"
    gapped.write_bytes(b"\n".join(frames[:40] + frames[41:]) + b"\n")
    result = run(
        capsys,
        "--venue",
        "binance",
        "--snapshot",
        str(SAMPLES / "binance_depth_snapshot.jsonl"),
        str(gapped),
    )
    assert result["gaps"] == 1 and result["resyncs"] == 1


def test_coinbase_level2_and_malformed_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    frames = tmp_path / "frames.jsonl"
    frames.write_bytes((SAMPLES / "coinbase_exchange_level2.jsonl").read_bytes() + b"{oops\n")
    result = run(capsys, "--venue", "coinbase", str(frames))
    assert result["frames"] == 153 and result["malformed"] == 1
    assert result["events"] == {"BookDelta": 150, "BookSnapshot": 1}
    book = result["books"]["SKL-GBP"]
    assert book["asks"][0] == ["0.57700000", "1008.20000000"]
    assert book["bids"][0] == ["0.57470000", "1028.60000000"]


def test_coinbase_matches_and_tickers(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--venue", "coinbase", str(SAMPLES / "coinbase_exchange_matches.jsonl"))[
        "events"
    ] == {"Trade": 40}
    result = run(capsys, "--venue", "coinbase", str(SAMPLES / "coinbase_advanced_quoted.jsonl"))
    assert result["events"] == {"BookDelta": 1, "BookSnapshot": 1, "Ticker": 1, "Trade": 1}
    assert result["books"]["BTC-PERP-INTX"]["bids"] == [["79943.80000000", "0.50000000"]]


def test_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay-raw", "--venue", "binance", "/nonexistent.jsonl"]) == 2
    assert "error" in capsys.readouterr().err
