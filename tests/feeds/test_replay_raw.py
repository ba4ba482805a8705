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


LONG = "A" * 100_000
JUNK = b"\x00\xff\xfe\x80\x9c junk \xc3\x28"
COINBASE_UPDATE = (
    '{"type":"l2update","product_id":"%s","changes":[["sell","%s","335.0"]],'
    '"time":"2021-04-17T16:43:37.078325Z"}'
)
BINANCE_DIFF = (
    '{"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512668,"s":"%s",'
    '"U":499869755,"u":499869757,"b":[["%s","1290.00000000"]],"a":[]}}'
)
KRAKEN_UPDATE = (
    '{"channel":"book","type":"update","data":[{"symbol":"%s","bids":[],"asks":[{"price":%s,'
    '"qty":1.5}],"checksum":3329440863,"timestamp":"2025-05-06T09:17:26.208075Z"}]}'
)
DERIBIT_CHANGE = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{"type":'
    '"change","timestamp":1626993724318,"prev_change_id":1,"instrument_name":"%s",'
    '"change_id":2,"bids":[],"asks":[["new",%s,2.6]]}}}'
)
MALFORMED = {
    # venue: (sample, frame template, its symbol, a bad number, NaN)
    "coinbase": ("coinbase_exchange_level2", COINBASE_UPDATE, "SKL-GBP", "0.57,62", "NaN"),
    "binance": ("binance_depth", BINANCE_DIFF, "NKNUSDT", "0.35x", "NaN"),
    "kraken": ("kraken_v2_book", KRAKEN_UPDATE, "ETH/USD", '"1797.5.2"', "NaN"),
    "deribit": ("deribit_book", DERIBIT_CHANGE, "BTC-24SEP21-8000-P", '"0.0x1"', "NaN"),
}


@pytest.mark.parametrize("venue", sorted(MALFORMED))
def test_malformed_frames_are_counted_and_never_end_the_run(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, tmp_path: Path, venue: str
) -> None:
    sample, template, symbol, bad_number, nan = MALFORMED[venue]
    frames = (SAMPLES / f"{sample}.jsonl").read_bytes().strip().splitlines()
    bad = [
        (template % (symbol, bad_number)).encode(),
        (template % (symbol, nan)).encode(),
        (template % (LONG, bad_number)).encode(),
        (template % (LONG, "1.5")).encode(),
        frames[1][: len(frames[1]) // 2],
        JUNK,
    ]
    clean_path, dirty_path = tmp_path / "clean.jsonl", tmp_path / "dirty.jsonl"
    clean_path.write_bytes(b"\n".join(frames) + b"\n")
    middle = len(frames) // 2 + 1  # after the first book snapshot
    dirty_path.write_bytes(b"\n".join(frames[:middle] + bad + frames[middle:]) + b"\n")
    snapshot = ["--snapshot", str(SAMPLES / "binance_depth_snapshot.jsonl")]
    options = ["--venue", venue, *(snapshot if venue == "binance" else [])]
    clean = run(capsys, *options, str(clean_path))
    assert main(["replay-raw", *options, str(dirty_path)]) == 0
    out, err = capsys.readouterr()
    dirty = json.loads(out)
    assert dirty["malformed"] == clean["malformed"] + len(bad)
    assert dirty["frames"] == clean["frames"] + len(bad)
    if venue == "kraken":
        # numbers stay text until the text-exact book: a bad one is found when the book has
        # taken part of the message, so that pair's book is dropped and resubscribed (as live)
        assert (dirty["resyncs"], dirty["books"]) == (clean["resyncs"] + 1, {})
    else:
        assert {**dirty, "frames": 0, "malformed": 0} == {**clean, "frames": 0, "malformed": 0}
        assert dirty["books"] and all(book["valid"] for book in dirty["books"].values())
    for text in (out, err, caplog.text):
        assert "A" * 120 not in text and "0.57,62" not in text
