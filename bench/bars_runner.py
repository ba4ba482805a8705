"""Runs inside vectorbt's or backtrader's own venv (not ours): the SMA(fast/slow) crossover,
long 1 unit on an up-cross, flat on a down-cross, filled at the signal bar's close, 10 bp per
fill, cash 1e6 (research §A.10-A.11), timed cold (first call, with JIT/imports) and warm.

Usage: PYTHON bench/bars_runner.py vectorbt|backtrader BARS.npz FAST SLOW REPEATS
-> one JSON line: bars, cold_s, warm_s, round trips, final equity. BARS.npz holds int64
micro-unit open/high/low/close/volume arrays written by bench_backtest_bars.py.
"""

import json
import sys
import time
from typing import Any

import numpy as np


def signals(close: Any, fast: int, slow: int) -> Any:
    """Strict SMA crossings in exact integers (float SMAs of these prices cross differently:
    vectorbt's own MA crossings give ~1.7x the entries on this data), so every engine trades
    the same signals and only the engines are compared."""
    sums = np.concatenate([[0], np.cumsum(close)])
    n = len(close)
    sign = np.zeros(n, dtype=np.int64)
    idx = np.arange(slow - 1, n)
    diff = (sums[idx + 1] - sums[idx + 1 - fast]) * slow - (
        sums[idx + 1] - sums[idx + 1 - slow]
    ) * fast
    sign[idx] = np.sign(diff)
    previous = np.concatenate([[0], sign[:-1]])
    return (previous < 0) & (sign > 0), (previous > 0) & (sign < 0)


def vectorbt_run(bars: Any, fast: int, slow: int) -> tuple[int, float]:
    import pandas as pd  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import vectorbt as vbt  # type: ignore[import-not-found,import-untyped,unused-ignore]

    index = pd.date_range("2024-01-01", periods=len(bars["close"]), freq="1min")
    close = pd.Series(bars["close"] / 1e6, index=index)
    up, down = signals(bars["close"], fast, slow)
    entries, exits = pd.Series(up, index=index), pd.Series(down, index=index)
    portfolio = vbt.Portfolio.from_signals(
        close, entries, exits, size=1, size_type="amount", fees=0.001, init_cash=1e6, freq="1min"
    )
    return int(portfolio.trades.count()), float(portfolio.final_value())


def backtrader_run(bars: Any, fast: int, slow: int) -> tuple[int, float]:
    import datetime as dt

    import backtrader as bt  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import pandas as pd  # type: ignore[import-not-found,import-untyped,unused-ignore]

    index = pd.date_range("2024-01-01", periods=len(bars["close"]), freq="1min")
    frame = pd.DataFrame(
        {
            "open": bars["open"] / 1e6,
            "high": bars["high"] / 1e6,
            "low": bars["low"] / 1e6,
            "close": bars["close"] / 1e6,
            "volume": bars["volume"].astype(float),
        },
        index=index,
    )

    up, down = signals(bars["close"], fast, slow)

    class Cross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.trips = 0

        def next(self) -> None:
            t = len(self) - 1
            if not self.position and up[t]:
                self.buy(size=1)
            elif self.position and down[t]:
                self.close()
                self.trips += 1

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes))
    cerebro.addstrategy(Cross)
    cerebro.broker.setcash(1e6)
    cerebro.broker.setcommission(commission=0.001)
    cerebro.broker.set_coc(True)
    strategy = cerebro.run()[0]
    del dt
    return strategy.trips, float(cerebro.broker.getvalue())


def main() -> None:
    engine, path = sys.argv[1], sys.argv[2]
    fast, slow, repeats = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    bars = dict(np.load(path))
    run: Any = vectorbt_run if engine == "vectorbt" else backtrader_run
    began = time.perf_counter()
    trips, equity = run(bars, fast, slow)
    cold = time.perf_counter() - began
    warm = []
    for _ in range(repeats):
        began = time.perf_counter()
        run(bars, fast, slow)
        warm.append(time.perf_counter() - began)
    warm.sort()
    print(
        json.dumps(
            {
                "bars": len(bars["close"]),
                "cold_s": cold,
                "warm_s": warm[len(warm) // 2] if warm else cold,
                "round_trips": trips,
                "equity": equity,
            }
        )
    )


if __name__ == "__main__":
    main()
