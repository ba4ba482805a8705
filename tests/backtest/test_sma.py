"""The SMA crossover against a hand-written exact-integer oracle (research §A.10-A.11).

Synthetic 1-minute bars: close is an integer count of micro-units moving +-20 per bar,
open[t] = close[t-1] (so "fill at the signal bar's close" is unambiguous), high/low outside,
volume far above the order size. The oracle below shares no code with the engine: it walks the
closes with integer sums, and books fills, fees (ceil, in 1e-7 USD: money.py) and cash itself.
Both the event path (bars through `Backtest.on_event`) and the vectorised path must give the
same round trips, prices, fees and final equity to the last unit.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantsaas.analytics.candles import Candle
from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.results import build_result
from quantsaas.backtest.roundtrips import round_trips
from quantsaas.backtest.runner import load_strategy
from quantsaas.backtest.vector import Bars, run_vector
from quantsaas.model import Instrument

NS = 1_000_000_000
MINUTE = 60 * NS
T0 = 1_704_067_200 * NS
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sma_crossover.py"
INSTRUMENT = Instrument("test", "BTC", "USD", "BTCUSD", 6, 0, 1, 1)
FEES = Fees.parse("0.001")


def synthetic_bars(count: int, seed: int, start: int = 30_000_000_000) -> list[Candle]:
    rng = random.Random(seed)
    bars = []
    close = start
    for index in range(count):
        opened = close
        close = opened + rng.choice((-20, 20))
        high = max(opened, close) + rng.randint(0, 40)
        low = min(opened, close) - rng.randint(0, 40)
        volume = rng.randint(1, 999) * 1_000_000
        ts = T0 + index * MINUTE
        bars.append(
            Candle(INSTRUMENT, "1m", ts, opened, high, low, close, volume, 0, 0, 1, True, ts, ts)
        )
    return bars


def oracle(closes: list[int], fast: int, slow: int, cash: int) -> dict[str, object]:
    """Long 1 on a strict up-cross of SMA(fast) over SMA(slow), flat on a strict down-cross,
    filled at the signal bar's close, 10 bp per fill rounded up to 1e-7 USD."""
    trips: list[tuple[int, int, int, int]] = []
    fees = 0
    position = 0
    entry: tuple[int, int] | None = None
    previous = 0
    for t in range(len(closes)):
        if t + 1 < slow:
            continue
        fast_sum = sum(closes[t + 1 - fast : t + 1])
        slow_sum = sum(closes[t + 1 - slow : t + 1])
        diff = fast_sum * slow - slow_sum * fast
        sign = (diff > 0) - (diff < 0)
        price = closes[t]
        fee = -((-price * 10 * 100_000) // 100_000_000)  # ceil(price * 10 * 0.001)
        if previous < 0 < sign and position == 0:
            position = 1
            cash -= price * 10 + fee
            fees += fee
            entry = (t, price)
        elif previous > 0 > sign and position == 1:
            position = 0
            cash += price * 10 - fee
            fees += fee
            assert entry is not None
            trips.append((entry[0], entry[1], t, price))
            entry = None
        previous = sign
    equity = cash + position * closes[-1] * 10
    return {"trips": trips, "open": entry, "fees": fees, "equity": equity}


def _event_run(bars: list[Candle], fast: int, slow: int) -> Backtest:
    cls = load_strategy(EXAMPLE)
    config = BacktestConfig(fees=FEES, curve_ns=MINUTE)
    strategy = cls(fast=fast, slow=slow, size="1")
    return Backtest(strategy, [INSTRUMENT], config).run(bars)


def _trip_indices(run_fills, units) -> list[tuple[int, int, int, int]]:  # type: ignore[no-untyped-def]
    out = []
    for trip in round_trips(run_fills, units):
        if trip.exit_ns is None:
            continue
        entry_idx = (trip.entry_ns - T0) // MINUTE - 1
        exit_idx = (trip.exit_ns - T0) // MINUTE - 1
        out.append((entry_idx, trip.entry_notional, exit_idx, trip.exit_notional))
    return out


def check_against_oracle(count: int, seed: int, fast: int, slow: int) -> None:
    bars = synthetic_bars(count, seed)
    closes = [b.close for b in bars]
    expected = oracle(closes, fast, slow, 1_000_000 * 10**7)
    run = _event_run(bars, fast, slow)
    assert _trip_indices(run.fills, run.units) == expected["trips"]
    assert sum(f.fee for f in run.fills) == expected["fees"]
    assert run.equity("USD") == expected["equity"]
    run.account.check(run.fills)
    # the vectorised path: the same fills, the same money
    cls = load_strategy(EXAMPLE)
    frame = Bars.from_candles(bars)
    strategy: Any = cls(fast=fast, slow=slow, size="1")
    target = strategy.vector(frame)
    vector = run_vector(target, frame, BacktestConfig(fees=FEES))
    assert [(f.side, f.price, f.size, f.fee, f.ts_ns) for f in vector.fills] == [
        (f.side, f.price, f.size, f.fee, f.ts_ns) for f in run.fills
    ]
    assert vector.account.equity("USD") == expected["equity"]
    assert vector.curve.equity["USD"][-1] == expected["equity"]


def test_oracle_on_a_long_series() -> None:
    bars = synthetic_bars(5_000, 42)
    closes = [b.close for b in bars]
    expected = oracle(closes, 10, 30, 1_000_000 * 10**7)
    assert len(expected["trips"]) > 50  # type: ignore[arg-type]
    check_against_oracle(5_000, 42, 10, 30)


def test_vector_equity_curve_bar_by_bar() -> None:
    """cash + position x close after every bar, recomputed from the fills alone."""
    bars = synthetic_bars(2_000, 3)
    strategy: Any = load_strategy(EXAMPLE)(fast=5, slow=20, size="1")
    frame = Bars.from_candles(bars)
    run = run_vector(strategy.vector(frame), frame, BacktestConfig(fees=FEES))
    cash, position = 1_000_000 * 10**7, 0
    fills = {f.ts_ns: f for f in run.fills}
    expected = [cash]
    for bar in bars:
        fill = fills.get(bar.end_ns)
        if fill is not None:
            sign = 1 if fill.side.value == "buy" else -1
            cash -= sign * fill.price * fill.size * 10 + fill.fee
            position += sign * fill.size
        expected.append(cash + position * bar.close * 10)
    assert len(run.fills) > 20
    assert run.curve.equity["USD"] == expected


def test_oracle_when_the_run_ends_in_a_position() -> None:
    for seed in range(30):
        bars = synthetic_bars(400, seed)
        if oracle([b.close for b in bars], 5, 20, 0)["open"] is not None:
            check_against_oracle(400, seed, 5, 20)
            return
    raise AssertionError("no seed ends in a position")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(min_value=40, max_value=600),
    seed=st.integers(min_value=0, max_value=2**32),
    fast=st.integers(min_value=2, max_value=12),
    extra=st.integers(min_value=1, max_value=25),
)
def test_oracle_on_random_datasets(count: int, seed: int, fast: int, extra: int) -> None:
    check_against_oracle(count, seed, fast, fast + extra)


def test_result_document_carries_params_range_and_metrics() -> None:
    bars = synthetic_bars(3_000, 7)
    run = _event_run(bars, 10, 30)
    result = build_result(
        run,
        run.config,
        {"name": "SmaCross", "params": {"fast": 10, "slow": 30}},
        {"kind": "test", "from_ns": T0, "to_ns": T0 + 3_000 * MINUTE},
        0.1,
    )
    usd = result["currencies"]["USD"]
    assert usd["equity"] == run.units.format_cash("USD", run.equity("USD"))
    assert usd["cash_scale"] == 7  # price_scale 6 + size_scale 0 + 1
    assert result["strategy"]["params"] == {"fast": 10, "slow": 30}
    assert result["data"]["from_ns"] == T0
    metrics = usd["metrics"]
    assert metrics["sample"] == "1h"  # 50 hours: the longest sampling with >= 30 returns
    assert metrics["fills"] == len(run.fills)
    assert metrics["fill_ratio"] == 1.0
    assert result["trade_count"] == len(round_trips(run.fills, run.units))
