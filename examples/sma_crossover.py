"""SMA crossover on bars: long `size` when SMA(fast) crosses above SMA(slow), flat when it
crosses back below. Exact integer arithmetic: the SMAs are compared as sums
(fast_sum * slow > slow_sum * fast), so no float ever decides a signal.

    quantsaas backtest examples/sma_crossover.py --data sim --symbols BTC/USD --fees 0.001
    quantsaas backtest examples/sma_crossover.py --data imported --venue binance \
        --symbols BTC/USDT --fees 0.001 --vector --sweep fast=5,10,20
"""

from __future__ import annotations

from collections import deque

import numpy as np

from quantsaas.analytics.candles import Candle
from quantsaas.backtest import Strategy
from quantsaas.backtest.vector import Bars


def crossing_signs(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    """sign(SMA_fast - SMA_slow) per bar (0 until `slow` bars exist), in exact integers."""
    sums = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(close, dtype=np.int64)])
    n = len(close)
    out = np.zeros(n, dtype=np.int64)
    if n < slow:
        return out
    idx = np.arange(slow - 1, n)
    fast_sum = sums[idx + 1] - sums[idx + 1 - fast]
    slow_sum = sums[idx + 1] - sums[idx + 1 - slow]
    out[idx] = np.sign(fast_sum * slow - slow_sum * fast)
    return out


class SmaCross(Strategy):
    params = {"fast": 10, "slow": 30, "size": "1"}
    bar_interval = "1m"

    def on_start(self) -> None:
        self.fast, self.slow = int(self.params["fast"]), int(self.params["slow"])
        if not 0 < self.fast < self.slow:
            raise ValueError("need 0 < fast < slow")
        self.closes: deque[int] = deque(maxlen=self.slow)
        self.previous = 0

    def on_bar(self, bar: Candle) -> None:
        closes = self.closes
        closes.append(bar.close)
        if len(closes) < self.slow:
            return
        fast_sum = sum(list(closes)[-self.fast :])
        slow_sum = sum(closes)
        diff = fast_sum * self.slow - slow_sum * self.fast
        sign = (diff > 0) - (diff < 0)
        instrument = bar.instrument
        position = self.position(instrument)
        if self.previous < 0 < sign and position == 0:
            self.buy(instrument, self.size(instrument, self.params["size"]))
        elif self.previous > 0 > sign and position > 0:
            self.sell(instrument, position)
        self.previous = sign

    def vector(self, bars: Bars) -> np.ndarray:
        """The same rule over whole arrays: the position wanted after each bar's close."""
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        size = bars.instrument.size(self.params["size"])
        sign = crossing_signs(bars.close, fast, slow)
        previous = np.concatenate([np.zeros(1, dtype=np.int64), sign[:-1]])
        event = np.where(
            (previous < 0) & (sign > 0), 1, np.where((previous > 0) & (sign < 0), -1, 0)
        )
        marks = np.where(event != 0, np.arange(len(event)), -1)
        last = np.maximum.accumulate(marks)
        state = np.where(last >= 0, event[np.maximum(last, 0)], -1)
        return np.where(state == 1, size, 0).astype(np.int64)
