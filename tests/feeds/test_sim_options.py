import asyncio
import datetime as dt

import numpy as np
import pytest

from helpers import engine_of, make_runtime, on_events
from quantsaas.analytics.greeks import bs_price, option_greeks
from quantsaas.analytics.iv import implied_vol_bs
from quantsaas.analytics.smile import parse_option_name
from quantsaas.channels import OPTIONS
from quantsaas.feeds.sim_instruments import SimConfig, select_instruments, sim_instrument
from quantsaas.feeds.sim_options import OptionChainSim, expiries
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.model import MarketEvent, OptionTicker

BTC = sim_instrument("BTC/USD")
NOW = int(dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def day(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def test_expiries_daily_weekly_monthly_quarterly_at_eight_utc() -> None:
    assert [day(e) for e in expiries(NOW)] == [
        "2026-11-26 08:00", "2026-11-27 08:00", "2026-12-25 08:00", "2027-03-26 08:00"
    ]  # fmt: skip
    late = int(dt.datetime(2026, 11, 26, 7, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
    assert day(expiries(late)[0]) == "2026-11-27 08:00"  # less than 2 h to the daily


def test_chain_names_and_specs() -> None:
    chain = OptionChainSim(BTC, 0.6, NOW)
    assert len(chain.instruments) == 4 * 9 * 2
    for instrument in chain.instruments:
        name = parse_option_name(instrument.symbol)
        option = instrument.option
        assert option is not None and option.underlying == "BTC/USD"
        assert (name.expiry_ns, name.strike, name.kind) == (
            option.expiry_ns, float(option.strike), option.kind)  # fmt: skip
        assert instrument.key == ("sim", instrument.symbol)


def ours_vega(ticker: OptionTicker) -> float:
    option = ticker.instrument.option
    assert option is not None
    greeks = option_greeks(
        option.kind, 60_000.0, option.strike, option.expiry_ns, NOW, ticker.mark_iv / 100
    )
    return float(greeks.vega)


def test_tickers_are_consistent_prices_ivs_and_greeks() -> None:
    chain = OptionChainSim(BTC, 0.6, NOW)
    tickers = chain.tickers(6_000_000.0, NOW)
    assert len(tickers) == len(chain.instruments)
    forward = 60_000.0
    for ticker in tickers:
        option = ticker.instrument.option
        assert option is not None
        years = (option.expiry_ns - NOW) / (365 * 86_400 * 1e9)
        usd = float(bs_price(option.kind, forward, option.strike, years, ticker.mark_iv / 100))
        # in ticks of 0.0001 BTC, at least one tick; the IV is published to 0.01 vol points
        iv_rounding = ours_vega(ticker) * 0.005 / forward * 1e4
        assert abs(ticker.mark_price - max(1.0, usd / forward * 1e4)) <= 0.5 + iv_rounding + 1e-9
        if ticker.best_bid_price is not None:
            assert ticker.best_bid_price <= ticker.mark_price <= (ticker.best_ask_price or 0)
        ours = option_greeks(option.kind, forward, option.strike, option.expiry_ns, NOW,
                             ticker.mark_iv / 100)  # fmt: skip
        assert ticker.delta == pytest.approx(ours.delta, abs=2e-4)
        assert ticker.underlying_price == forward
    # the mark IV is recoverable from the mark price where the tick does not dominate
    liquid = [t for t in tickers if t.mark_price > 100 and abs(t.delta) < 0.9]
    assert liquid
    prices = np.array([t.mark_price / 1e4 * 60_000 for t in liquid])
    kinds = [t.instrument.option.kind for t in liquid if t.instrument.option]
    strikes = [t.instrument.option.strike for t in liquid if t.instrument.option]
    times = [(t.instrument.option.expiry_ns - NOW) / (365 * 86_400e9) for t in liquid
             if t.instrument.option]  # fmt: skip
    iv = implied_vol_bs(prices, kinds, 60_000.0, strikes, times)
    assert np.max(np.abs(iv * 100 - [t.mark_iv for t in liquid])) < 0.5


def test_smile_has_puts_rich_and_no_tickers_after_expiry() -> None:
    chain = OptionChainSim(BTC, 0.6, NOW)
    tickers = chain.tickers(6_000_000.0, NOW)
    monthly = [t for t in tickers if "25DEC26" in t.instrument.symbol and t.instrument.option
               and t.instrument.option.kind == "call"]  # fmt: skip
    ivs = [t.mark_iv for t in monthly]
    assert ivs[0] > ivs[-1]
    after_daily = chain.tickers(6_000_000.0, expiries(NOW)[0])
    assert not any("26NOV26" in t.instrument.symbol for t in after_daily)
    assert chain.tickers(0.0, NOW) == []


@pytest.mark.asyncio
async def test_simulator_emits_the_chain_every_second_through_the_engine() -> None:
    feed = SimulatorFeed(select_instruments("BTC/USD,SOL/USD"), SimConfig())
    assert [chain.underlying.symbol for chain in feed.option_chains] == ["BTC/USD"]
    built = make_runtime([feed])
    engine = engine_of(built)
    sub = built.bus.subscribe([(OPTIONS, "sim", "BTC/USD")])
    seen: list[MarketEvent] = []
    on_events(built, seen.append)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    options = [e for e in seen if isinstance(e, OptionTicker)]
    assert len(options) == len(feed.option_chains[0].instruments)  # one round in 0.3 s
    published = []
    while (item := sub.get_nowait()) is not None:
        published.append(item)
    assert len(published) == len(options)
