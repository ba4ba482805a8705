from typing import TypeVar

import numpy as np
import pytest
from msgspec.structs import replace

from helpers import (
    OFI_L1_VECTOR,
    ScriptedFeed,
    delta,
    engine_of,
    make_instrument,
    make_runtime,
    snapshot,
)
from quantsaas.analytics.candles import Candle, candles_from_trades
from quantsaas.analytics.events import OfiUpdate, OptionGreeks, VpinUpdate
from quantsaas.analytics.greeks import option_greeks
from quantsaas.analytics.live import (
    CANDLES,
    GREEKS,
    OFI,
    VPIN,
    AnalyticsConfig,
    AnalyticsService,
)
from quantsaas.analytics.ofi import ofi_buckets
from quantsaas.analytics.vpin import VpinConfig, vpin_batch
from quantsaas.bus import Bus, Envelope, Subscription
from quantsaas.channels import OPTIONS
from quantsaas.engine import Engine
from quantsaas.feeds.sim_instruments import sim_instrument
from quantsaas.feeds.sim_options import OptionChainSim
from quantsaas.model import BookDelta, BookSnapshot, Side, Trade

E = TypeVar("E")
BTC = make_instrument()
BTC_SIM = sim_instrument("BTC/USD")
S = 1_000_000_000
T0 = 1_800_000_000 * S


def setup(**config: object) -> tuple[Engine, AnalyticsService, Subscription, Bus]:
    """The analytics consumer as the composition root wires it, with this configuration."""
    built = make_runtime([ScriptedFeed([BTC])], analytics=AnalyticsConfig(**config))  # type: ignore[arg-type]
    engine, service = engine_of(built), built.analytics
    assert service is not None
    topics = [(c, *BTC.key) for c in (CANDLES, OFI, VPIN, GREEKS, OPTIONS)]
    sub = built.bus.subscribe(topics)
    assert set(built.read_model.channels()) >= {CANDLES, OFI, VPIN, GREEKS, OPTIONS}
    return engine, service, sub, built.bus


def of(kind: type[E], envelopes: list[Envelope], channel: str) -> list[E]:
    out = [e.event for e in envelopes if e.topic[0] == channel]
    assert all(isinstance(event, kind) for event in out)
    return out  # type: ignore[return-value]


def drain(sub: Subscription) -> list[Envelope]:
    out = []
    while (item := sub.get_nowait()) is not None:
        assert isinstance(item, Envelope)
        out.append(item)
    return out


def trades(n: int) -> list[Trade]:
    rng = np.random.default_rng(3)
    return [
        Trade(BTC, int(6_000_000 + rng.integers(-500, 500)), int(rng.integers(1, 9)),
              Side.BUY if rng.random() < 0.6 else Side.SELL, str(i),
              T0 + i * S // 3, T0 + i * S // 3 + 1)
        for i in range(n)
    ]  # fmt: skip


def test_live_candles_equal_candles_from_the_same_trades() -> None:
    engine, service, sub, bus = setup()
    stream = trades(400)
    for trade in stream:
        engine.on_event(trade)
    state = service.state(BTC)
    for name in ("1s", "1m", "5m"):
        live = [*state.closed[name], state.candles[name].current]
        assert live == candles_from_trades(stream, name)
    published = of(Candle, drain(sub), CANDLES)
    assert [c for c in published if c.interval == "1m"] == list(state.closed["1m"])
    assert state.session_vwap.volume == sum(t.size for t in stream)


def test_clock_closes_candles_and_publishes_open_ones() -> None:
    engine, service, sub, bus = setup()
    stream = trades(3)  # all within the first second
    for trade in stream:
        engine.on_event(trade)
    service.tick(T0 + S // 2)
    opened = of(Candle, drain(sub), CANDLES)
    assert {c.interval for c in opened} == {"1s", "1m", "5m", "15m", "1h", "4h", "1d"}
    assert not any(c.closed for c in opened)
    service.tick(T0 + 2 * S)
    closed = of(Candle, drain(sub), CANDLES)
    assert [(c.interval, c.closed, c.trades) for c in closed] == [("1s", True, 3)]


def test_live_vpin_matches_batch() -> None:
    engine, _, sub, bus = setup(vpin_bucket_volume={"BTC/USD": 20}, vpin_window=3)
    stream = trades(200)
    for trade in stream:
        engine.on_event(trade)
    updates = of(VpinUpdate, drain(sub), VPIN)
    expected = vpin_batch(
        VpinConfig(20, 3),
        [t.price / 100 for t in stream],
        np.array([t.size for t in stream]),
        [t.side is Side.BUY for t in stream],
        [t.ts_event for t in stream],
    )
    assert [u.bucket for u in updates] == expected


def test_vpin_calibrates_its_bucket_from_the_first_trades_without_losing_any() -> None:
    engine, service, _, bus = setup(vpin_window=2)
    stream = trades(150)
    for trade in stream:
        engine.on_event(trade)
    state = service.state(BTC)
    size = sum(t.size for t in stream[:100]) // 10
    assert state.vpin is not None and state.vpin.config.bucket_volume == size
    assert len(state.vpin_buckets) == sum(t.size for t in stream) // size


def test_live_ofi_matches_batch_on_the_book_states() -> None:
    engine, service, sub, bus = setup(ofi_levels=1, ofi_bucket_s=1.0)
    # analytics.md §1.6 as book messages: e = [+3, +3, -4, +4, -8, +2, 0]
    messages: list[BookSnapshot | BookDelta] = [
        snapshot(BTC, [(10000, 5)], [(10100, 5)], 1),
        delta(BTC, [(10000, 8)], [], 2),
        delta(BTC, [], [(10100, 2)], 3),
        delta(BTC, [], [(10050, 4)], 4),
        delta(BTC, [], [(10050, 0), (10100, 6)], 5),
        delta(BTC, [(10000, 0), (9950, 7)], [], 6),
        delta(BTC, [(10000, 2)], [], 7),
        delta(BTC, [(9000, 1)], [], 8),  # deeper than level 1: no change at the top
    ]
    stamps = [T0, T0 + 1, T0 + 2, T0 + 3, T0 + S, T0 + S + 1, T0 + S + 2, T0 + S + 3]
    for message, ts in zip(messages, stamps, strict=True):
        engine.on_event(replace(message, ts_event=ts, ts_recv=ts))
    service.tick(T0 + 3 * S)
    updates = of(OfiUpdate, drain(sub), OFI)
    assert [u.bucket.ofi for u in updates] == [(2,), (-2,)]
    l1 = OFI_L1_VECTOR
    bp, bq, ap, aq = (np.array([[row[i]] for row in l1]) for i in range(4))
    assert [u.bucket for u in updates] == ofi_buckets(np.array(stamps), bp, bq, ap, aq, S)


def test_option_tickers_are_published_with_our_greeks() -> None:
    engine, service, sub, bus = setup()
    chain = OptionChainSim(BTC_SIM, 0.6, T0)
    tickers = chain.tickers(6_000_000.0, T0)
    for ticker in tickers:
        engine.on_event(ticker)
    got = drain(sub)
    assert not got  # the sim chain is on venue sim, not on this test venue
    sim_sub = bus.subscribe([(GREEKS, "sim", "BTC/USD"), (OPTIONS, "sim", "BTC/USD")])
    engine.on_event(tickers[0])
    envelopes = drain(sim_sub)
    assert [e.topic[0] for e in envelopes] == [OPTIONS, GREEKS]
    greeks = envelopes[1].event
    assert isinstance(greeks, OptionGreeks)
    option = tickers[0].instrument.option
    assert option is not None
    expected = option_greeks(
        option.kind, 60_000.0, option.strike, option.expiry_ns, T0, tickers[0].mark_iv / 100
    )
    assert greeks.ours == expected
    assert greeks.ours.delta == pytest.approx(tickers[0].delta, abs=1e-4)
    assert service.options[("sim", "BTC/USD")][tickers[0].instrument.symbol] == greeks


def test_option_ticker_for_a_spot_instrument_is_dropped() -> None:
    engine, service, sub, bus = setup()
    chain = OptionChainSim(BTC_SIM, 0.6, T0)
    bad = chain.tickers(6_000_000.0, T0)[0]
    engine.on_event(replace(bad, instrument=BTC))
    assert drain(sub) == []
    assert service.options == {} and service.errors == 0
