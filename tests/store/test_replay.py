"""Replay: recorded events through a fresh Engine reproduce the live books and trade counts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from helpers import engine_of, make_runtime, record_simulator
from quantsaas import runtime
from quantsaas.config import Settings
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.feeds.base import Feed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.history_cli import run_replay
from quantsaas.replay_raw import replay_frames
from quantsaas.runtime import Runtime
from quantsaas.store import replay
from quantsaas.store.history import HistoryStore
from quantsaas.store.rawlog import append_frames, raw_path
from quantsaas.store.replay import RawFeed, stored_feeds


def replay_runtime(feeds: Sequence[Feed]) -> Runtime:
    return runtime.build(Settings(web_dist=None), "replay", feeds=feeds)


SAMPLES = Path(__file__).resolve().parents[1] / "feeds" / "samples"


@pytest.mark.asyncio
@pytest.mark.parametrize("window_s", [600.0, 0.7])
async def test_replay_at_max_speed_reproduces_books_and_trade_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window_s: float
) -> None:
    monkeypatch.setattr(replay, "WINDOW_NS", round(window_s * 1e9))
    live = record_simulator(tmp_path, seconds=6)
    progress: list[tuple[int, int]] = []
    feeds = stored_feeds(
        HistoryStore(tmp_path), 0, 2**62, progress=lambda d, t: progress.append((d, t))
    )
    replaying = replay_runtime(feeds)
    engine = engine_of(replaying)
    async with asyncio.timeout(30):
        await run_replay(replaying, list(feeds))
    assert engine.resyncs_requested == 0 and engine.rejected_deltas == 0
    for key, book in live.engine.books.items():
        replayed = engine.books[key]
        assert replayed.valid
        assert replayed.bids() == book.bids() and replayed.asks() == book.asks()
        assert replayed.sequence == book.sequence
        live_state, replay_state = live.engine.state(book.instrument), engine.state(book.instrument)
        assert replay_state.trade_count == live_state.trade_count > 0
    assert progress[-1][0] == progress[-1][1] > 0


@pytest.mark.asyncio
async def test_replay_from_the_middle_starts_at_the_last_snapshot(tmp_path: Path) -> None:
    live = record_simulator(tmp_path, seconds=4, snapshot_s=0.5)
    btc = live.feed.instruments[0]
    middle = live.books[len(live.books) // 2].ts_event
    feeds = stored_feeds(HistoryStore(tmp_path), middle, 2**62, symbols=("BTC/USD",))
    replaying = replay_runtime(feeds)
    engine = engine_of(replaying)
    async with asyncio.timeout(30):
        await run_replay(replaying, list(feeds))
    assert engine.books[btc.key].bids() == live.engine.books[btc.key].bids()
    assert engine.state(btc).trade_count == sum(
        1 for t in live.trades if t.instrument == btc and t.ts_event >= middle
    )


@pytest.mark.asyncio
async def test_raw_frames_replay_through_the_venue_parser(tmp_path: Path) -> None:
    sample = SAMPLES / "coinbase_exchange_level2.jsonl"
    lines = [line for line in sample.read_text().splitlines() if line.strip()]
    base = 1_704_067_200 * 10**9
    frames = [("coinbase", line, base + i) for i, line in enumerate(lines)]
    append_frames(raw_path(tmp_path, "coinbase", base), frames)
    expected = await replay_frames("coinbase", [line.encode() for line in lines])
    assert expected["books"]
    feed = CoinbaseFeed(coinbase_instruments(list(expected["books"])), url="ws://unused")
    raw = RawFeed(feed, tmp_path, base, base + len(lines))
    replaying = replay_runtime([raw])
    engine = engine_of(replaying)
    async with asyncio.timeout(30):
        await run_replay(replaying, [raw])
    assert raw.replayed == len(lines)
    for native, book in expected["books"].items():
        got = next(b for b in engine.books.values() if b.instrument.native_symbol == native)
        top = [
            [got.instrument.format_price(p), got.instrument.format_size(s)] for p, s in got.bids(10)
        ]
        assert top == book["bids"]


@pytest.mark.asyncio
async def test_a_recorded_venue_session_replays_from_raw_frames_to_the_live_books(
    tmp_path: Path,
) -> None:
    products = ("BTC-USD", "ETH-USD")
    fake = FakeCoinbase(CoinbaseFakeConfig(symbols=products, rate=300))
    port = await fake.start()
    feed = CoinbaseFeed(coinbase_instruments(products), url=f"ws://127.0.0.1:{port}")
    recording = make_runtime(
        [feed], Settings(data_dir=tmp_path, record_flush_s=0.2, web_dist=None), record=True
    )
    live, recorder = engine_of(recording), recording.recorder
    assert recorder is not None
    task = asyncio.create_task(recording.run())
    try:
        async with asyncio.timeout(20):
            while sum(live.state(i).trade_count for i in feed.instruments) < 100:
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
    assert recorder.status.raw_frames > 0 and recorder.status.last_error is None
    raw = RawFeed(
        CoinbaseFeed(coinbase_instruments(products), url="ws://unused"), tmp_path, 0, 2**62
    )
    replaying = replay_runtime([raw])
    engine = engine_of(replaying)
    async with asyncio.timeout(30):
        await run_replay(replaying, [raw])
    for instrument in feed.instruments:
        book, replayed = live.books[instrument.key], engine.books[instrument.key]
        assert replayed.valid and book.valid
        assert (replayed.bids(), replayed.asks()) == (book.bids(), book.asks())
        assert engine.state(instrument).trade_count == live.state(instrument).trade_count

    # `replay --symbols ETH-USD`: the connection's frames are parsed whole (its sequence spans
    # every product), only ETH-USD's events reach the replay's engine
    btc, eth = feed.instruments
    raw = RawFeed(
        CoinbaseFeed(coinbase_instruments(products), url="ws://unused"),
        tmp_path,
        0,
        2**62,
        only=[eth],
    )
    assert list(raw.instruments) == [eth]
    replaying = replay_runtime([raw])
    engine = engine_of(replaying)
    async with asyncio.timeout(30):
        await run_replay(replaying, [raw])
    assert raw.feed.stats.gaps == 0 and raw.stats.malformed == 0
    assert engine.books[eth.key].bids() == live.books[eth.key].bids()
    assert engine.state(eth).trade_count == live.state(eth).trade_count
    assert btc.key not in engine.books or not engine.books[btc.key].valid
