"""The composition root: what each role builds, one event sequence for every consumer, and the
same analytics live and on a replay in event time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helpers import ScriptedFeed, drive_simulator, engine_of, make_instrument, record_simulator
from quantsaas import runtime
from quantsaas.api.app import create_app
from quantsaas.bus import Envelope
from quantsaas.channels import BOOK, TRADES
from quantsaas.clock import EventClock, WallClock
from quantsaas.config import Settings
from quantsaas.errors import BusError, ConfigError
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.history_cli import run_replay
from quantsaas.model import BookDelta, Trade
from quantsaas.store.history import HistoryStore
from quantsaas.store.replay import stored_feeds

SETTINGS = Settings(web_dist=None)
NOWHERE = "redis://127.0.0.1:1/0"  # never connected in these tests: the parts are only built


def test_each_role_builds_exactly_its_parts(tmp_path: Path) -> None:
    feed = [ScriptedFeed([make_instrument()])]
    recording = SETTINGS.model_copy(update={"data_dir": tmp_path})
    everything = {"bus", "read_model", "feeds", "engine", "analytics", "consolidated", "status"}
    assert runtime.build(SETTINGS, "all", feeds=feed).parts() == everything
    assert runtime.build(recording, "all", feeds=feed, record=True).parts() == {
        *everything,
        "recorder",
    }
    ingest = runtime.build(recording, "ingest", feeds=feed, bus_url=NOWHERE, record=True)
    assert ingest.parts() == {*everything, "recorder", "link"}
    replay = runtime.build(SETTINGS, "replay", feeds=feed, record=True)
    assert replay.parts() == everything - {"status"}  # a replay records and announces nothing
    assert isinstance(replay.clock, EventClock) and isinstance(ingest.clock, WallClock)
    api = runtime.build(SETTINGS, "api", bus_url=NOWHERE)
    assert api.parts() == {"bus", "read_model", "link", "status"}  # no feeds, engine, producers
    assert not api.bus.consumers and not api.feeds
    with pytest.raises(BusError):
        api.bus.publish((TRADES, "sim", "BTC/USD"), Trade(make_instrument(), 1, 1, None, "1", 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs --bus"):
        runtime.build(SETTINGS, "api")
    with pytest.raises(ConfigError, match="unknown role"):
        runtime.build(SETTINGS, "x" * 1000)


def test_an_ingest_process_serves_probes_metrics_and_the_stream_only() -> None:
    feed = [ScriptedFeed([make_instrument()])]
    ingest = create_app(runtime.build(SETTINGS, "ingest", feeds=feed, bus_url=NOWHERE))
    assert set(ingest.openapi()["paths"]) == {"/health", "/livez", "/readyz", "/metrics"}
    assert "/ws" in {getattr(route, "path", "") for route in ingest.routes}
    full = create_app(runtime.build(SETTINGS, "all", feeds=feed))
    assert {"/api/market_data", "/api/v1/book/{venue}/{symbol}"} <= set(full.openapi()["paths"])


def test_the_recorder_analytics_and_a_stream_client_see_one_sequence(tmp_path: Path) -> None:
    feed = SimulatorFeed(select_instruments("BTC/USD"), SimConfig(events_per_second=2000))
    settings = Settings(data_dir=tmp_path, web_dist=None)
    built = runtime.build(settings, feeds=[feed], record=True)
    btc = feed.instruments[0]
    topics = [(TRADES, *btc.key), (BOOK, *btc.key)]
    client = built.bus.subscribe(topics)  # what a /ws client's session holds
    client._limits = type(client._limits)(queue_size=10**7, max_lag_s=60, max_drops=10**7)
    consumed: list[tuple[tuple[str, str, str], int]] = []
    built.bus.consume("spy", (TRADES, BOOK), lambda e: consumed.append((e.topic, e.seq)))
    drive_simulator(engine_of(built).on_event, [feed.simulator(btc)], 5.0)
    assert built.recorder is not None and built.analytics is not None
    built.recorder.flush()
    streamed: list[tuple[tuple[str, str, str], int]] = []
    while (item := client.get_nowait()) is not None:
        assert isinstance(item, Envelope)  # never a gap: nothing was dropped
        streamed.append((item.topic, item.seq))
    ours = [(topic, seq) for topic, seq in consumed if topic in topics]
    assert streamed == ours and len(ours) > 1000
    for topic in topics:  # gap-free per topic, from 1
        seqs = [seq for t, seq in ours if t == topic]
        assert seqs == list(range(1, len(seqs) + 1))
    by_name = {consumer.name: consumer for consumer in built.bus.consumers}
    assert by_name["recorder"].delivered == by_name["analytics"].delivered == len(consumed)
    assert all(consumer.errors == 0 for consumer in built.bus.consumers)
    trades = [seq for topic, seq in ours if topic[0] == TRADES]
    store = HistoryStore(tmp_path)
    recorded = store.trades_table(btc, 0, 2**62).num_rows
    analysed = built.analytics.state(btc).session_vwap
    assert recorded == len(trades) > 0
    assert analysed is not None
    state = built.analytics.state(btc)
    candle_trades = sum(c.trades for c in state.closed["1s"]) + (
        state.candles["1s"].current.trades if state.candles["1s"].current else 0
    )
    assert candle_trades == len(trades)
    deltas = sum(1 for topic, _ in ours if topic[0] == BOOK) - 1  # one snapshot first
    assert deltas > 0 and BookDelta is not None


@pytest.mark.asyncio
async def test_candles_and_vpin_of_a_replay_in_event_time_equal_the_live_ones(
    tmp_path: Path,
) -> None:
    live = record_simulator(tmp_path, seconds=8, symbols="BTC/USD", rate=1500)
    assert live.runtime is not None and live.runtime.analytics is not None
    live_state = live.runtime.analytics.state(live.feed.instruments[0])
    feeds = stored_feeds(HistoryStore(tmp_path), 0, 2**62)
    replaying = runtime.build(SETTINGS, "replay", feeds=feeds)
    async with asyncio.timeout(60):
        await run_replay(replaying, feeds)
    assert replaying.analytics is not None
    replayed = replaying.analytics.state(live.feed.instruments[0])
    for interval in ("1s", "1m"):
        closed_live = list(live_state.closed[interval])
        # replay's clock runs on to the last recorded event, so it may close one more candle
        closed_replay = list(replayed.closed[interval])[: len(closed_live)]
        assert closed_replay == closed_live
    assert len(live_state.closed["1s"]) >= 5
    assert list(replayed.vpin_buckets) == list(live_state.vpin_buckets)
    assert len(live_state.vpin_buckets) > 0
    assert replaying.clock.now_ns() >= max(t.ts_recv for t in live.trades)
