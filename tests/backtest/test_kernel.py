"""The compiled market-maker kernel agrees with the reference engine, fill for fill."""

from __future__ import annotations

import pytest

from backtest.examples_path import market_maker_class
from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.kernel import columns, run_market_maker
from quantsaas.backtest.sources import sim_events, sim_instruments
from quantsaas.model import Side

MS = 1_000_000
T0 = 1_704_067_200_000_000_000


@pytest.mark.parametrize(
    ("symbol", "latency_ms", "every_ms", "fees", "seconds"),
    [
        ("BTC/USD", 0, 100, "-0.5bp,7bp", 120),
        ("BTC/USD", 10, 50, "-0.5bp,7bp", 120),
        ("ETH/USD", 3, 20, "0.0002,0.0007", 90),
        ("ADA/USD", 25, 200, "-1bp,5bp", 240),
    ],
)
def test_kernel_equals_the_engine(
    symbol: str, latency_ms: int, every_ms: int, fees: str, seconds: int
) -> None:
    (instrument,) = sim_instruments([symbol])
    events = list(sim_events([symbol], T0, T0 + seconds * 1000 * MS))
    lot = instrument.lot_size
    size = (
        max(lot, instrument.size("0.01") // lot * lot) if instrument.size_scale >= 2 else lot * 100
    )
    size_text = instrument.format_size(size)
    config = BacktestConfig(
        order_latency_ns=latency_ms * MS, fees=Fees.parse(fees), queue="risk-averse"
    )
    strategy = market_maker_class()(every_ms=every_ms, size=size_text, max_lots=3)
    reference = Backtest(strategy, [instrument], config).run(events)
    kernel = run_market_maker(
        columns(events, instrument),
        instrument,
        every_ms * MS,
        size,
        3,
        config.fees,
        latency_ms * MS,
        reference.account.initial[instrument.quote],
    )
    expected = [
        (
            f.order_id,
            1 if f.side is Side.BUY else -1,
            f.price,
            f.size,
            1 if f.liquidity.value == "maker" else 0,
            f.fee,
            f.ts_ns,
        )
        for f in reference.fills
    ]
    assert len(expected) > 10
    assert [tuple(int(v) for v in row) for row in kernel.fills] == expected
    assert kernel.orders == len(reference.orders)
    assert kernel.position == reference.account.positions[instrument.key]
    assert kernel.cash == reference.account.cash[instrument.quote]
    reference.refresh_marks()
    assert kernel.mark == reference.account.marks[instrument.key]
