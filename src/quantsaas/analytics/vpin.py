"""VPIN, Easley, López de Prado & O'Hara (2012), on a volume clock; streaming and batch.

Input: trades (or time bars) with price, integer volume (raw size units) and, for the
`aggressor` classifier, the aggressor side. Each trade gets a buy fraction f:
* `aggressor` (default for crypto, where venues report the taker side): 1 for buys, 0 for sells;
* `bvc` (bulk volume classification): f = Z((P_i - P_i-1) / sigma), Z the standard normal CDF,
  or Student-t with `df` degrees of freedom when `df` is given; `sigma` > 0 is fixed by the
  caller (e.g. the std of the bar price changes) and P_0 is `reference_price` (the first price
  when not given);
* `tick`: the tick rule, 1 on an uptick, 0 on a downtick, the previous f when unchanged (0.5 at
  the start).
Volume is poured into buckets of exactly V (integer); a trade straddling a boundary is split
exactly, both parts keeping its f. With cumulative volume C (exact integer) and cumulative buy
volume B (float, summed in trade order) the buy volume of bucket j is B(jV + V) - B(jV), where
B is linear inside each trade. After bucket tau >= n is complete:
VPIN_tau = sum over the last n buckets of |V_sell - V_buy| / (n V), summed with math.fsum.
The partial last bucket is never used. Streaming and batch perform the same float operations in
the same order and so give bit-identical results.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantsaas.analytics.normal import ndtr

Classifier = Literal["aggressor", "bvc", "tick"]
CLASSIFIERS: tuple[Classifier, ...] = ("aggressor", "bvc", "tick")


@dataclass(frozen=True, slots=True)
class VpinConfig:
    bucket_volume: int
    """V, raw size units."""
    window: int = 50
    """n, buckets per VPIN value."""
    classifier: Classifier = "aggressor"
    sigma: float | None = None
    """Std of price changes for `bvc`, in the price units given."""
    df: float | None = None
    """Student-t degrees of freedom for `bvc`; None = normal."""
    reference_price: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.bucket_volume, bool) or not isinstance(self.bucket_volume, int):
            raise ValueError("bucket_volume must be an integer (raw size units)")
        if self.bucket_volume <= 0 or self.window < 1:
            raise ValueError("bucket_volume and window must be positive")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier must be one of {CLASSIFIERS}, not {self.classifier!r}")
        if self.classifier == "bvc":
            if self.sigma is None or not math.isfinite(self.sigma) or self.sigma <= 0:
                raise ValueError("bvc needs a positive finite sigma")
            if self.df is not None and not (math.isfinite(self.df) and self.df > 0):
                raise ValueError("df must be a positive finite number")


@dataclass(frozen=True, slots=True)
class VpinBucket:
    index: int
    """0-based number of the completed bucket."""
    buy: float
    sell: float
    vpin: float | None
    """None until `window` buckets are complete."""
    ts_ns: int
    """Time of the trade that completed the bucket."""


class VpinStream:
    """Streaming VPIN: O(1) per trade plus O(n) per completed bucket."""

    def __init__(self, config: VpinConfig) -> None:
        self.config = config
        self.volume = 0
        self.buy_cum = 0.0
        self.buckets = 0
        self._last_price = config.reference_price
        self._frac = 0.5
        self._edge_buy = 0.0
        self._imbalance: collections.deque[float] = collections.deque(maxlen=config.window)

    def _fraction(self, price: float, is_buy: bool | None) -> float:
        cfg = self.config
        prev = price if self._last_price is None else self._last_price
        self._last_price = price
        if cfg.classifier == "aggressor":
            if is_buy is None:
                raise ValueError("the aggressor classifier needs the trade side")
            return 1.0 if is_buy else 0.0
        if cfg.classifier == "tick":
            if price != prev:
                self._frac = 1.0 if price > prev else 0.0
            return self._frac
        assert cfg.sigma is not None
        z = (price - prev) / cfg.sigma
        return float(ndtr(z) if cfg.df is None else _student_t_cdf(cfg.df, z))

    def on_trade(
        self, price: float, volume: int, is_buy: bool | None = None, ts_ns: int = 0
    ) -> list[VpinBucket]:
        """Add one trade; returns the buckets it completed (usually none)."""
        if isinstance(volume, bool) or not isinstance(volume, int) or volume < 0:
            raise ValueError(f"trade volume must be a non-negative integer, not {volume!r}")
        if not math.isfinite(price):
            raise ValueError(f"trade price must be finite, not {price!r}")
        frac = self._fraction(price, is_buy)
        size = self.config.bucket_volume
        start, prev_buy = self.volume, self.buy_cum
        self.volume += volume
        self.buy_cum = prev_buy + volume * frac
        done = []
        while (self.buckets + 1) * size <= self.volume:
            edge = (self.buckets + 1) * size
            edge_buy = prev_buy + (edge - start) * frac
            done.append(self._complete(edge_buy, ts_ns))
        return done

    def _complete(self, edge_buy: float, ts_ns: int) -> VpinBucket:
        size, window = self.config.bucket_volume, self.config.window
        buy = edge_buy - self._edge_buy
        self._edge_buy = edge_buy
        sell = size - buy
        self._imbalance.append(abs(sell - buy))
        index = self.buckets
        self.buckets += 1
        vpin = math.fsum(self._imbalance) / (window * size) if self.buckets >= window else None
        return VpinBucket(index, buy, sell, vpin, ts_ns)


def buy_fractions(
    config: VpinConfig, prices: NDArray[np.float64], is_buy: NDArray[np.bool_] | None
) -> NDArray[np.float64]:
    """Vectorised buy fraction of every trade, as VpinStream computes it one by one."""
    if config.classifier == "aggressor":
        if is_buy is None:
            raise ValueError("the aggressor classifier needs the trade sides")
        return np.where(is_buy, 1.0, 0.0)
    if prices.size == 0:
        return np.empty(0)
    ref = prices[0] if config.reference_price is None else config.reference_price
    change = np.diff(prices, prepend=ref)
    if config.classifier == "tick":
        step = np.where(change > 0, 1.0, np.where(change < 0, 0.0, np.nan))
        idx = np.where(np.isnan(step), 0, np.arange(step.size))
        np.maximum.accumulate(idx, out=idx)
        filled = step[idx]
        return np.where(np.isnan(filled), 0.5, filled)
    assert config.sigma is not None
    z = change / config.sigma
    return np.asarray(
        ndtr(z) if config.df is None else _student_t_cdf(config.df, z), dtype=np.float64
    )


def _student_t_cdf(df: float, z: float | NDArray[np.float64]) -> NDArray[np.float64]:
    """Student-t CDF for the `df` variant of BVC, a research option the live service does not
    use: SciPy is imported only here, on first use (the normal CDF is ours, normal.py)."""
    from scipy.special import stdtr

    return np.asarray(stdtr(df, z), dtype=np.float64)


def vpin_batch(
    config: VpinConfig,
    prices: ArrayLike,
    volumes: ArrayLike,
    is_buy: ArrayLike | None = None,
    ts_ns: ArrayLike | None = None,
) -> list[VpinBucket]:
    """Every completed bucket of a trade array; identical to feeding VpinStream one by one."""
    px = np.asarray(prices, dtype=np.float64)
    vol = np.asarray(volumes)
    if px.ndim != 1 or vol.shape != px.shape:
        raise ValueError("prices and volumes must be one-dimensional and of the same length")
    if vol.size and (vol.dtype.kind not in "iu" or vol.min() < 0):
        raise ValueError("volumes must be non-negative integers (raw size units)")
    if not np.all(np.isfinite(px)):
        raise ValueError("prices must be finite")
    sides = None if is_buy is None else np.asarray(is_buy, dtype=np.bool_)
    frac = buy_fractions(config, px, sides)
    vol = vol.astype(np.int64)
    cum = np.cumsum(vol)
    buy_cum = np.cumsum(vol * frac)
    size = config.bucket_volume
    total = int(cum[-1]) if cum.size else 0
    edges = np.arange(1, total // size + 1, dtype=np.int64) * size
    # the trade whose volume reaches each edge; B at the edge, as the stream computes it
    at = np.searchsorted(cum, edges, side="left")
    start = cum[at] - vol[at]
    prev_buy = np.where(at > 0, buy_cum[np.maximum(at - 1, 0)], 0.0)
    edge_buy = prev_buy + (edges - start) * frac[at]
    buys = np.diff(edge_buy, prepend=0.0)
    stamps = np.zeros(px.size, dtype=np.int64) if ts_ns is None else np.asarray(ts_ns)
    return _rolling(config, buys.tolist(), stamps[at].tolist())


def _rolling(config: VpinConfig, buys: Sequence[float], stamps: Sequence[int]) -> list[VpinBucket]:
    size, window = config.bucket_volume, config.window
    imbalance = [abs((size - b) - b) for b in buys]
    out = []
    for i, (buy, ts) in enumerate(zip(buys, stamps, strict=True)):
        vpin = None
        if i + 1 >= window:
            vpin = math.fsum(imbalance[i + 1 - window : i + 1]) / (window * size)
        out.append(VpinBucket(i, buy, size - buy, vpin, int(ts)))
    return out
