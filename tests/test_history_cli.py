"""CLI: `replay` and `export` over a recorded store, and the recording options of `serve`."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from helpers import record_simulator
from quantsaas import runtime
from quantsaas.cli import main, parser, settings_from
from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.feeds.deribit.parse import option_instrument
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.history_cli import recorded_symbols, with_store_options
from quantsaas.model import BookSnapshot, Side, Trade
from quantsaas.store.history import HistoryStore
from quantsaas.store.recorder import Recorder, RecorderConfig


def test_serve_records_by_default_into_data_dir(tmp_path: Path) -> None:
    assert Settings().record is True and Settings().data_dir == Path("data")
    args = parser().parse_args(["serve", "--data-dir", str(tmp_path), "--flush", "0.5"])
    settings = with_store_options(settings_from(args), args)
    assert settings.data_dir == tmp_path and settings.record_flush_s == 0.5
    built = runtime.build(settings, feeds=[SimulatorFeed()], record=settings.record)
    recorder = built.recorder
    assert recorder is not None and recorder.config.root == tmp_path
    assert any(c.name == "recorder" for c in built.bus.consumers)
    args = parser().parse_args(["serve", "--no-record"])
    settings = with_store_options(settings_from(args), args)
    assert runtime.build(settings, feeds=[SimulatorFeed()], record=settings.record).recorder is None


def test_replay_command_prints_the_replayed_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = record_simulator(tmp_path, seconds=3)
    assert main(["replay", "--data-dir", str(tmp_path), "--speed", "max", "--depth", "3"]) == 0
    out = capsys.readouterr()
    summary = orjson.loads(out.out)
    for instrument in live.feed.instruments:
        got = summary["instruments"][f"sim:{instrument.symbol}"]
        assert got["trades"] == live.engine.state(instrument).trade_count
        price, size = live.engine.books[instrument.key].bids(1)[0]
        assert got["bids"][0] == [instrument.format_price(price), instrument.format_size(size)]
    assert "100.0%" in out.err


def test_replay_speed_paces_by_recorded_time(tmp_path: Path) -> None:
    record_simulator(tmp_path, seconds=2, symbols="ETH/USD", rate=200)
    started = time.monotonic()
    assert main(["replay", "--data-dir", str(tmp_path), "--speed", "10"]) == 0
    assert time.monotonic() - started >= 0.15  # ~2 s of events at 10x
    assert main(["replay", "--data-dir", str(tmp_path), "--speed", "0"]) == 2


def test_export_trades_csv_and_candles_parquet(tmp_path: Path) -> None:
    live = record_simulator(tmp_path / "data", seconds=2)
    btc = live.feed.instruments[0]
    out = tmp_path / "trades.csv"
    common = ["--data-dir", str(tmp_path / "data"), "--venue", "sim", "--symbol", "BTC-USD"]
    common += ["--from", "2024-01-01", "--to", "2024-01-02"]
    assert main(["export", *common, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.read_text().splitlines()))
    mine = [t for t in live.trades if t.instrument == btc]
    assert [r["price"] for r in rows] == [btc.format_price(t.price) for t in mine]
    out = tmp_path / "candles.parquet"
    argv = ["export", *common, "--kind", "candles", "--interval", "1s", "--format", "parquet"]
    assert main([*argv, "--out", str(out)]) == 0
    assert sum(pq.read_table(out).column("trades").to_pylist()) == len(mine)
    assert main(["export", *common[:-2], "--to", "2023-12-31", "--out", str(out)]) == 2


def test_export_bounds_times_and_writes_atomically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record_simulator(tmp_path / "data", seconds=1)
    out = tmp_path / "out" / "trades.parquet"
    common = ["export", "--data-dir", str(tmp_path / "data"), "--venue", "sim"]
    common += ["--symbol", "BTC-USD", "--format", "parquet", "--out", str(out)]
    assert main([*common, "--from", "0", "--to", "300000000000000000000"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert not out.exists()
    # the widest range there is: only the recorded days are read (not 106,000 empty ones)
    assert main([*common, "--from", "0", "--to", str(2**63 - 1)]) == 0
    whole = pq.read_table(out)
    assert whole.num_rows > 0
    # an export that fails midway leaves the earlier file as it was, and no temporary file
    (
        tmp_path
        / "data"
        / "trades"
        / "venue=sim"
        / "symbol=BTC-USD"
        / "date=2024-01-01"
        / "x.parquet"
    ).write_bytes(b"not parquet")
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises for a broken file
        main([*common, "--from", "0", "--to", str(2**63 - 1)])
    assert pq.read_table(out).equals(whole)
    assert sorted(p.name for p in out.parent.iterdir()) == ["trades.parquet"]


def test_replay_symbols_select_options_and_dashed_products_by_any_listed_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`replay --symbols` follows the API's rule (quantsaas.symbols): an option by its own name in
    any case, a pair as BTC-USD; the old rewrite asked for `BTC/5DEC26/48000/C` and found none."""
    option = option_instrument("BTC-5DEC26-48000-C")
    (perp,) = coinbase_instruments(["BTC-PERP-INTX"])
    (pair,) = coinbase_instruments(["BTC-USD"])
    recorder = Recorder(RecorderConfig(tmp_path))
    t = 1_704_067_200 * 10**9
    for n, instrument in enumerate((option, perp, pair)):
        recorder.on_event(BookSnapshot(instrument, ((10, 2),), ((30, 4),), 1, t, t))
        recorder.on_event(Trade(instrument, 30, 1 + n, Side.BUY, "1", t + 1, t + 1))
    recorder.flush()
    store = HistoryStore(tmp_path)
    assert recorded_symbols(store, ["btc-5dec26-48000-c", "btc-usd"]) == (
        "BTC-5DEC26-48000-C",
        "BTC/USD",
    )
    assert recorded_symbols(store, ["BTC-PERP-INTX"], ["coinbase"]) == ("BTC/PERP-INTX",)
    with pytest.raises(ConfigError, match="DOGE"):
        recorded_symbols(store, ["DOGE/USD"])
    with pytest.raises(ConfigError):  # recorded, but not on that venue
        recorded_symbols(store, ["BTC-5DEC26-48000-C"], ["coinbase"])

    argv = ["replay", "--data-dir", str(tmp_path), "--speed", "max"]
    assert main([*argv, "--symbols", "btc-5dec26-48000-c"]) == 0
    summary = orjson.loads(capsys.readouterr().out)
    assert list(summary["instruments"]) == ["deribit:BTC-5DEC26-48000-C"]
    assert summary["instruments"]["deribit:BTC-5DEC26-48000-C"]["trades"] == 1
    assert main([*argv, "--symbols", "DOGE-USD"]) == 2
    assert "DOGE-USD" in capsys.readouterr().err
