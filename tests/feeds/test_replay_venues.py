"""`quantsaas replay-raw --venue kraken|deribit` and the venue checks of `fake-exchange`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from samples_path import SAMPLES

from quantsaas.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:  # type: ignore[type-arg]
    assert main(["replay-raw", *argv]) == 0
    result: dict = json.loads(capsys.readouterr().out)  # type: ignore[type-arg]
    return result


def test_kraken_v1_and_v2_frames_of_several_pairs_in_one_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mixed = tmp_path / "kraken.jsonl"
    mixed.write_bytes(
        b"\n".join(
            (SAMPLES / name).read_bytes().strip()
            for name in (
                "kraken_v2_book.jsonl",
                "kraken_v1_book.jsonl",
                "kraken_v2_checksum_doc_example.jsonl",
            )
        )
        + b"\nnot json\n"
    )
    result = run(capsys, "--venue", "kraken", str(mixed))
    assert result["checksums_verified"] == 2 + 289 + 1 and result["checksum_failures"] == 0
    assert result["malformed"] == 1
    assert set(result["books"]) == {"ETH/USD", "XBT/CHF", "BTC/USD"}
    assert all(book["valid"] for book in result["books"].values())
    assert result["books"]["ETH/USD"]["asks"][-1] == ["1797.5200000000", "1.5660131800"]


def test_deribit(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--venue", "deribit", str(SAMPLES / "deribit_book.jsonl"))
    assert result["events"] == {"BookDelta": 30, "BookSnapshot": 1, "RpcResult": 1}
    assert result["gaps"] == 0 and result["malformed"] == 0
    assert result["books"]["BTC-24SEP21-8000-P"]["bids"] == [["0.00050000", "153.10000000"]]


@pytest.mark.parametrize(
    ("venue", "fault"),
    [("binance", "checksum"), ("deribit", "maintenance"), ("kraken", "stale-snapshot")],
)
def test_faults_that_do_not_apply_are_clear_errors(
    capsys: pytest.CaptureFixture[str], venue: str, fault: str
) -> None:
    assert main(["fake-exchange", venue, "--fault", fault]) == 2
    assert "do not apply" in capsys.readouterr().err
