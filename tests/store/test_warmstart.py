"""The simulator warm start: the past hours as recorded history, once, within a budget."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from helpers import ScriptedFeed, make_instrument
from quantsaas.feeds.sim_instruments import SimConfig, select_instruments, sim_spec
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.model import BookSnapshot
from quantsaas.store import warmstart
from quantsaas.store.history import HistoryStore
from quantsaas.store.layout import TRADES
from quantsaas.store.recorder import Recorder, RecorderConfig
from quantsaas.store.warmstart import STAGING, WarmStart, WarmStartJob, has_history, plan, run

NS = 1_000_000_000
END = 1_767_225_600 * NS + 37 * 60 * NS  # 2026-01-01T00:37Z: the past crosses midnight
FEED = SimulatorFeed(select_instruments("BTC/USD,ETH/USD"), SimConfig(seed=11))


def small(root: Path, hours: float = 1.0, max_events: int = 30_000) -> WarmStart:
    warm = plan(root, [FEED], hours, end_ns=END)
    assert warm is not None
    return WarmStart(root, warm.instruments, warm.config, END, hours, max_events=max_events)


def test_plan_only_for_a_simulator_without_history(tmp_path: Path) -> None:
    assert plan(tmp_path, [FEED], 0) is None  # --no-warm-start
    assert plan(tmp_path, [ScriptedFeed([make_instrument()])], 4) is None  # no simulator
    (tmp_path / STAGING / "junk").mkdir(parents=True)  # an interrupted warm start
    warm = plan(tmp_path, [FEED], 4)
    assert warm is not None and not (tmp_path / STAGING).exists()
    assert [i.symbol for i in warm.instruments] == ["BTC/USD", "ETH/USD"]
    assert warm.config.seed == 11 and warm.end_ns - warm.start_ns == 4 * 3600 * NS
    recorder = Recorder(RecorderConfig(tmp_path))
    btc = FEED.instruments[0]
    recorder.on_event(BookSnapshot(btc, ((100, 1),), ((101, 1),), 1, END, END))
    recorder.flush()
    assert has_history(tmp_path) and plan(tmp_path, [FEED], 4) is None  # idempotent


def test_the_budget_lowers_the_rate_never_the_period() -> None:
    warm = WarmStart(Path("."), FEED.instruments, SimConfig(events_per_second=50), END, 4.0)
    assert warm.rate() * 4 * 3600 * 2 == pytest.approx(warmstart.MAX_EVENTS)
    cheap = WarmStart(Path("."), FEED.instruments, SimConfig(events_per_second=2), END, 1.0)
    assert cheap.rate() == 2  # never above the live rate


@pytest.fixture(scope="module")
def warmed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, warmstart.WarmStartReport]:
    root = tmp_path_factory.mktemp("warm")
    return root, run(small(root))


def test_the_past_is_recorded_history(warmed: tuple[Path, warmstart.WarmStartReport]) -> None:
    root, report = warmed
    store = HistoryStore(root)
    assert {i.symbol for i in store.instruments()} == {"BTC/USD", "ETH/USD"}
    assert not (root / STAGING).exists() and report.files >= 2 * 2 * 7  # 7 slots x 2 kinds
    # slots before the last are written compacted (nothing for the live maintenance to merge
    # and delete under the first queries); the last stays a part beside the live recorder's
    last_slot = END // (600 * NS)
    for path in root.rglob("*.parquet"):
        slot = int(path.name.partition("-")[0].removesuffix(".parquet"))
        assert path.name.endswith(".part.parquet") == (slot == last_slot), path.name
    # the past runs at about 4 events/s for the budget, the live market at 50: fewer, larger
    # trades carry the live volume per minute
    assert report.size_factor == round(50 / (30_000 / 3600 / 2)) == 12
    start = END - 3600 * NS
    for symbol in ("BTC/USD", "ETH/USD"):
        instrument = store.instrument("sim", symbol)
        candles = store.candles(instrument, "1m", start, END, until_ns=END)
        assert len(candles) >= 55  # about one a minute, across midnight (two date partitions)
        sizes = store.trades_table(instrument, start, END).column("size").to_pylist()
        assert sizes and all(size % (12 * instrument.lot_size) == 0 for size in sizes)
        assert candles[0].start_ns < 1_767_225_600 * NS < candles[-1].start_ns
        # the past ends where the live simulator starts: no jump in the chart
        start_price = sim_spec(instrument).start_price
        assert abs(candles[-1].close - start_price) / start_price < 0.001
        for at in (start + 61 * NS, END - 30 * NS, END):
            book = store.book_at(instrument, at)
            assert book.bids and book.asks and book.bids[0][0] < book.asks[0][0]
            assert book.ts_event >= at - 60 * NS  # a checkpoint a minute at most before
            assert all(p % instrument.tick_size == 0 and p > 0 for p, _ in book.bids)


def test_the_same_seed_gives_the_same_past(
    tmp_path: Path, warmed: tuple[Path, warmstart.WarmStartReport]
) -> None:
    root, report = warmed
    again = run(small(tmp_path))
    assert again.shifts == report.shifts and again.events == report.events
    first = sorted((root / TRADES).rglob("*.parquet"))
    second = sorted((tmp_path / TRADES).rglob("*.parquet"))
    assert [p.relative_to(root) for p in first] == [p.relative_to(tmp_path) for p in second]
    for a, b in zip(first, second, strict=True):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_live_recording_after_it_orders_after_it(
    tmp_path: Path, warmed: tuple[Path, warmstart.WarmStartReport]
) -> None:
    """Recording orders of the past are below the live recorder's, so `book_at` after the
    start reads the live snapshot, not the past's last checkpoint."""
    root, _ = warmed
    trades = pq.read_table(sorted((root / TRADES).rglob("*.parquet"))[-1])
    assert max(trades.column("rec").to_pylist()) < time.time_ns() - 3600 * NS
    live = Recorder(RecorderConfig(root))
    btc = HistoryStore(root).instrument("sim", "BTC/USD")
    live.on_event(BookSnapshot(btc, ((100, 1),), ((101, 1),), 1, END + NS, END + NS))
    live.flush()
    try:
        assert HistoryStore(root).book_at(btc, END + 2 * NS).bids == ((100, 1),)
    finally:
        for path in root.rglob("*.parquet"):
            if min(pq.read_table(path).column("rec").to_pylist()) > END:
                path.unlink()


def test_stopped_early_it_leaves_nothing(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    report = run(small(tmp_path), stop)
    assert report.events == 0 and not has_history(tmp_path)
    assert not (tmp_path / STAGING).exists()


@pytest.mark.asyncio
async def test_the_job_runs_beside_the_loop_and_never_raises(tmp_path: Path) -> None:
    job = WarmStartJob(small(tmp_path, hours=0.25, max_events=5_000))
    ticks = 0

    async def beat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beating = asyncio.create_task(beat())
    await asyncio.wait_for(job(), 60)
    beating.cancel()
    assert job.report is not None and has_history(tmp_path)
    assert ticks > 0  # the event loop kept running meanwhile
    broken = WarmStartJob(WarmStart(tmp_path / "file", FEED.instruments, SimConfig(), END, 0.1))
    (tmp_path / "file").write_text("not a directory")
    await asyncio.wait_for(broken(), 60)  # logged, not raised
    assert broken.report is None


def serve(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "QUANTSAAS_DATA_DIR": str(data_dir),
        "QUANTSAAS_SIM_WARM_START_HOURS": "0.25",
    }
    command = [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0", "--rate", "20"]
    return subprocess.Popen(
        [*command, "--symbols", "BTC/USD", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def oldest_trade_age_s(base: str) -> float:
    now = time.time_ns()
    params = {"start": str(now - 3600 * NS), "end": str(now), "limit": "1"}
    body = httpx.get(f"{base}/api/v1/history/trades/sim/BTC-USD", params=params).json()
    return (now - body["data"][0]["ts_event"]) / NS if body.get("data") else 0.0


@pytest.mark.parametrize("warm", [True, False])
def test_serve_warms_an_empty_history_unless_told_not_to(tmp_path: Path, warm: bool) -> None:
    from test_cli import wait_for_url

    process = serve(tmp_path, *(() if warm else ("--no-warm-start",)))
    try:
        base = wait_for_url(process)
        deadline = time.monotonic() + 60
        while oldest_trade_age_s(base) < 600 and time.monotonic() < deadline and warm:
            time.sleep(0.5)
        time.sleep(0 if warm else 3)
        age = oldest_trade_age_s(base)
        if warm:  # a quarter of an hour of past, from the first minute
            assert 600 < age < 0.25 * 3600 + 60
        else:
            assert age < 60
    finally:
        process.terminate()
        process.communicate(timeout=20)  # also closes the pipes
