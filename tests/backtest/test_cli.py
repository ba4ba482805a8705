"""`quantsaas backtest`: the examples over simulated and imported data, JSON, sweeps in
worker processes, results saved where the API reads them."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from quantsaas.backtest.results import ResultStore
from quantsaas.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T0_MS = 1_704_067_200_000


def backtest(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(["backtest", *argv])
    captured = capsys.readouterr()
    out = orjson.loads(captured.out) if "--json" in argv and code == 0 else captured.out
    return code, out, captured.err


def write_klines(path: Path, minutes: int) -> None:
    rows = []
    price = 42_000_00
    for minute in range(minutes):
        opened = T0_MS + minute * 60_000
        step = 7 if (minute // 13) % 2 else -5
        close = price + step * 100
        high, low = max(price, close) + 100, min(price, close) - 100
        rows.append(
            f"{opened},{price / 100:.2f},{high / 100:.2f},{low / 100:.2f},{close / 100:.2f},"
            f"10.00000000,{opened + 59_999},420000.00000000,5,4.00000000,168000.00000000,0"
        )
        price = close
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("klines.csv", "\n".join(rows) + "\n")


def test_market_maker_on_the_simulator_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = backtest(
        capsys,
        str(EXAMPLES / "market_maker.py"),
        "--data", "sim", "--symbols", "BTC/USD,ETH/USD",
        "--to", "2024-01-01T00:02:00Z", "--latency-ms", "5", "--fees=-0.5bp,7bp",
        "--param", "size=0.01", "--json", "--data-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert out["data"]["path"] == "runtime" and out["data"]["instruments"] == [
        "sim:BTC/USD",
        "sim:ETH/USD",
    ]
    assert out["config"]["fees"] == {"maker": "-0.00005000", "taker": "0.00070000"}
    assert out["fill_count"] > 0 and out["owner"] == "local"
    usd = out["currencies"]["USD"]
    assert usd["metrics"]["maker_fees"].startswith("-")  # rebates paid us
    saved = ResultStore(tmp_path).get("local", out["id"])
    assert saved is not None and saved["strategy"]["params"]["size"] == "0.01"
    assert len(saved["curve_ts"]) == len(saved["currencies"]["USD"]["curve"]["equity"])
    assert "backtest [" in err  # the progress bar


def test_sma_sweep_over_imported_klines_in_parallel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    klines = tmp_path / "BTCUSDT-1m-2024-01-01.zip"
    write_klines(klines, 600)
    data = tmp_path / "data"
    assert main(
        ["import", "binance", "klines", str(klines), "--venue", "binance",
         "--symbol", "BTC/USDT", "--data-dir", str(data)]
    ) == 0  # fmt: skip
    capsys.readouterr()
    common = [
        str(EXAMPLES / "sma_crossover.py"), "--data", "imported", "--venue", "binance",
        "--symbols", "BTC/USDT", "--fees", "0.001", "--data-dir", str(data), "--json",
    ]  # fmt: skip
    code, swept, err = backtest(capsys, *common, "--sweep", "fast=3,5", "--jobs", "2")
    assert code == 0, err
    assert [r["strategy"]["params"]["fast"] for r in swept] == [3, 5]
    assert all(r["data"]["path"] == "bars" for r in swept)
    code, vector, _ = backtest(capsys, *common, "--param", "fast=5", "--vector", "--no-save")
    assert code == 0 and vector["data"]["path"] == "vector"
    events = next(r for r in swept if r["strategy"]["params"]["fast"] == 5)
    assert events["fill_count"] == vector["fill_count"] > 4
    assert events["currencies"]["USDT"]["equity"] == vector["currencies"]["USDT"]["equity"]
    code, table, _ = backtest(capsys, *common[:-1], "--no-save")
    assert code == 0 and "sharpe" in table and "fast=10 slow=30" in table


def test_bad_input_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = str(EXAMPLES / "sma_crossover.py")
    for argv, message in [
        (["--param", "fast=ten"], "is not a int"),
        (["--param", "nope=1"], "unknown parameter"),
        (["--fees", "abc"], "bad fee rate"),
        (["--queue", "magic"], "unknown queue model"),
        (["--data", "recorded", "--symbols", "BTC/USD"], "no history"),
    ]:
        code, _, err = backtest(capsys, strategy, "--data-dir", str(tmp_path), *argv)
        assert code == 2 and message in err, (argv, err)
    missing = tmp_path / "nothing.py"
    code, _, err = backtest(capsys, str(missing))
    assert code == 2 and "no strategy file" in err
