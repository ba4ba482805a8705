"""The one formula set every backtest result is measured with (never an engine's own numbers).

Inputs: the exact equity curve (cash units, sampled on the backtest's grid, engine.py) and the
fills. Conventions (../shared/research/backtest_frontend.md §A.9):

* **returns** are simple returns of equity resampled at a fixed `sample_ns` (the last curve
  point at or before each multiple of it, UTC-aligned): r_i = E_i / E_(i-1) - 1. `sample_ns`
  is the longest of 1 d, 1 h, 1 m, 1 s that still gives at least MIN_RETURNS returns (1 d
  for any run of a month or more), and is recorded with the result;
* **annualisation**: crypto trades every day, so a year is 365 days:
  periods_per_year = 365 d / sample_ns; the risk-free rate is 0;
* **Sharpe** = mean(r) / std(r, ddof=1) * sqrt(periods_per_year);
* **Sortino** = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year) (downside
  deviation about 0, over all periods);
* **max drawdown** = max over t of 1 - E_t / max(E_s, s <= t), on the full curve; its
  **duration** is the longest time from a peak until equity first regains it (or the end);
* **turnover** = sum |fill notional| / mean equity / days (per day);
* **fees** = sum of fees paid (rebates negative), also split maker/taker;
* **fill ratio** = filled size / submitted size over every order;
* **exposure** = share of curve points with a non-zero position, and mean gross exposure /
  equity.

Metrics are floats (they are ratios); money figures stay exact decimal strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from quantsaas.backtest.orders import Fill, Liquidity, Order

NS = 1_000_000_000
DAY_NS = 86_400 * NS
YEAR_NS = 365 * DAY_NS
SAMPLINGS = (DAY_NS, 3600 * NS, 60 * NS, NS)
SAMPLE_NAMES = {DAY_NS: "1d", 3600 * NS: "1h", 60 * NS: "1m", NS: "1s"}
MIN_RETURNS = 30


def choose_sampling(first_ns: int, last_ns: int) -> int:
    span = max(0, last_ns - first_ns)
    for width in SAMPLINGS:
        if span // width >= MIN_RETURNS:
            return width
    return NS


def resample(ts: Sequence[int], values: Sequence[int], width: int) -> list[int]:
    """The last value at or before each multiple of `width` from the first point on, plus the
    last point (a partial period at the end counts)."""
    if not ts:
        return []
    out = [values[0]]
    boundary = ts[0] - ts[0] % width + width
    index = 0
    n = len(ts)
    while boundary <= ts[-1]:
        while index + 1 < n and ts[index + 1] <= boundary:
            index += 1
        out.append(values[index])
        boundary += width
    if ts[-1] % width:
        out.append(values[-1])
    return out


def returns_of(equity: Sequence[int]) -> np.ndarray:
    values = np.array([float(v) for v in equity], dtype=np.float64)
    if len(values) < 2:
        return np.zeros(0)
    previous = values[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(previous != 0, values[1:] / previous - 1.0, 0.0)
    return np.asarray(out, dtype=np.float64)


def sharpe(returns: np.ndarray, periods_per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std == 0:
        return None
    return float(np.mean(returns)) / std * math.sqrt(periods_per_year)


def sortino(returns: np.ndarray, periods_per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0:
        return None
    return float(np.mean(returns)) / downside * math.sqrt(periods_per_year)


def drawdown(ts: Sequence[int], equity: Sequence[int]) -> tuple[float, int, list[float]]:
    """(max drawdown as a fraction, its longest duration in ns, the drawdown series)."""
    series: list[float] = []
    peak = None
    peak_ts = ts[0] if ts else 0
    worst = 0.0
    longest = 0
    for t, value in zip(ts, equity, strict=True):
        if peak is None or value >= peak:
            if peak is not None and value >= peak:
                longest = max(longest, t - peak_ts)
            peak, peak_ts = value, t
            series.append(0.0)
            continue
        dd = 1.0 - value / peak if peak > 0 else 0.0
        series.append(dd)
        worst = max(worst, dd)
    if ts and peak is not None and equity[-1] < peak:
        longest = max(longest, ts[-1] - peak_ts)
    return worst, longest, series


def compute(
    ts: Sequence[int],
    equity: Sequence[int],
    exposure: Sequence[int],
    fills: Sequence[Fill],
    orders: Sequence[Order],
    traded: int,
    cash_scale: int,
) -> dict[str, Any]:
    """Every metric of one currency's curve (equity and traded notional in cash units)."""
    if not ts:
        return {}
    width = choose_sampling(ts[0], ts[-1])
    sampled = resample(ts, equity, width)
    returns = returns_of(sampled)
    per_year = YEAR_NS / width
    worst, longest, _ = drawdown(ts, equity)
    unit = 10.0**-cash_scale
    mean_equity = float(np.mean([float(v) for v in equity])) * unit
    days = max((ts[-1] - ts[0]) / DAY_NS, 1e-9)
    submitted = sum(o.size for o in orders)
    filled = sum(o.filled for o in orders)
    fees = sum(f.fee for f in fills)
    maker = sum(f.fee for f in fills if f.liquidity is Liquidity.MAKER)
    exposed = sum(1 for v in exposure if v)
    gross = [e / q if q else 0.0 for e, q in zip(exposure, equity, strict=True)]
    first, last = equity[0], equity[-1]
    return {
        "sample": SAMPLE_NAMES.get(width, f"{width}ns"),
        "periods_per_year": per_year,
        "returns": len(returns),
        "total_return": (last / first - 1.0) if first else None,
        "sharpe": sharpe(returns, per_year),
        "sortino": sortino(returns, per_year),
        "max_drawdown": worst,
        "max_drawdown_duration_s": longest / NS,
        "turnover_per_day": (traded * unit / mean_equity / days) if mean_equity else None,
        "fees": fees,
        "maker_fees": maker,
        "taker_fees": fees - maker,
        "fill_ratio": filled / submitted if submitted else None,
        "orders": len(orders),
        "fills": len(fills),
        "exposure_time": exposed / len(exposure) if exposure else 0.0,
        "mean_gross_leverage": float(np.mean(gross)) if gross else 0.0,
    }
