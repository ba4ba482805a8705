"""A backtest on the live pipeline: a recorded day backtested equals the same strategy fed by
`quantsaas replay` of that day (same fills), and the direct path agrees with both."""

from __future__ import annotations

import asyncio
from pathlib import Path

from backtest.examples_path import market_maker_class
from helpers import record_simulator
from quantsaas import runtime
from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.live import EventsFeed, run_on_runtime, stored_feeds_for
from quantsaas.backtest.sources import sim_events, sim_instruments, stored_events
from quantsaas.backtest.strategy import Strategy
from quantsaas.bus import Envelope
from quantsaas.channels import BOOK, TRADES
from quantsaas.config import Settings
from quantsaas.history_cli import replay_feeds, run_replay
from quantsaas.store.history import HistoryStore

MS = 1_000_000
CONFIG = BacktestConfig(
    order_latency_ns=5 * MS, md_latency_ns=2 * MS, fees=Fees.parse("-0.5bp,7bp"), queue="prob:2"
)


def _strategy() -> Strategy:
    return market_maker_class()(every_ms=20, size="0.01", max_lots=3)


def _fills(backtest: Backtest) -> list[tuple[object, ...]]:
    return [
        (f.order_id, f.side, f.price, f.size, f.liquidity, f.fee, f.ts_ns) for f in backtest.fills
    ]


def test_recorded_day_backtest_equals_the_replay_of_that_day(tmp_path: Path) -> None:
    recording = record_simulator(tmp_path, seconds=20, symbols="BTC/USD,ETH/USD", rate=400)
    store = HistoryStore(tmp_path)
    instruments = sorted(store.instruments(), key=lambda i: i.symbol)
    assert [i.symbol for i in instruments] == ["BTC/USD", "ETH/USD"]
    start, end = 0, 2**62
    settings = Settings(data_dir=tmp_path, web_dist=None)

    # 1. what `quantsaas backtest --data recorded` runs: the backtest role of the root
    feeds = stored_feeds_for(store, instruments, start, end)
    on_root = run_on_runtime(settings, _strategy(), instruments, CONFIG, feeds)

    # 2. `quantsaas replay`'s own runtime, with the same strategy consuming its bus
    replayed = Backtest(_strategy(), instruments, CONFIG)
    replaying = runtime.build(
        settings, "replay", feeds=replay_feeds(settings, store, start, end, None)
    )
    engine = replaying.engine
    assert engine is not None
    compared = 0

    def consume(envelope: Envelope) -> None:
        nonlocal compared
        replayed.on_event(envelope.event)
        key = envelope.event.instrument.key
        ours, theirs = replayed.matchers[key].book, engine.books[key]
        assert ours.valid == theirs.valid
        if ours.valid:  # the venue side's copy is the engine's book, event for event
            assert ours.bids(5) == theirs.bids(5) and ours.asks(5) == theirs.asks(5)
            compared += 1

    replaying.bus.consume("backtest-test", (TRADES, BOOK), consume)
    asyncio.run(run_replay(replaying, replaying.feeds))
    replayed.finish()

    # 3. straight from the store, no engine
    direct = Backtest(_strategy(), instruments, CONFIG).run(
        stored_events(store, instruments, start, end)
    )

    assert compared > 1000
    assert len(on_root.fills) > 20
    assert _fills(on_root) == _fills(replayed) == _fills(direct)
    assert on_root.events == replayed.events == direct.events
    assert on_root.equity("USD") == replayed.equity("USD") == direct.equity("USD")
    assert recording.trades  # the day had trades
    assert sum(1 for f in on_root.fills if f.liquidity.value == "maker") > 0


def test_simulated_run_on_the_root_equals_the_direct_run() -> None:
    instruments = sim_instruments(["BTC/USD"])
    start = 1_704_067_200_000_000_000
    end = start + 30_000 * MS
    feed = EventsFeed("sim", instruments, sim_events(["BTC/USD"], start, end))
    on_root = run_on_runtime(Settings(web_dist=None), _strategy(), instruments, CONFIG, [feed])
    direct = Backtest(_strategy(), instruments, CONFIG).run(sim_events(["BTC/USD"], start, end))
    assert len(direct.fills) > 10
    assert _fills(on_root) == _fills(direct)


def test_a_failing_strategy_stops_the_run_with_its_error() -> None:
    class Broken(market_maker_class()):  # type: ignore[misc]
        def on_book(self, book, event):  # type: ignore[no-untyped-def]
            raise ZeroDivisionError("strategy bug")

    instruments = sim_instruments(["BTC/USD"])
    start = 1_704_067_200_000_000_000
    feed = EventsFeed("sim", instruments, sim_events(["BTC/USD"], start, start + 1000 * MS))
    try:
        run_on_runtime(Settings(web_dist=None), Broken(), instruments, CONFIG, [feed])
    except ZeroDivisionError as exc:
        assert "strategy bug" in str(exc)
    else:
        raise AssertionError("the strategy's error was swallowed")
