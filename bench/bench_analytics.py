"""Analytics throughput: greeks, implied vol, VPIN, OFI (batch) and per-event streaming costs.

Every figure is printed beside a baseline measured in the same run, as a ratio:

* greeks (price + delta, gamma, vega, theta, rho) of N options with `bs_greeks`, against a
  plain scalar Python loop (math.erf) over a sample, and against py_vollib_vectorized when the
  interpreter given by --pvv-python has it working (it is not a project dependency);
* implied vol of N options (deltas 0.01..0.99, 1 hour .. 2 years, vols 5..150 %) with
  `implied_vol_bs`, max |iv error|, against a scalar Newton-bisection loop over a sample;
* VPIN batch over N trades (aggressor and BVC) against `VpinStream` fed one trade at a time;
* OFI batch over N book states (5 levels) against `OfiStream` fed one state at a time;
* per-event cost of the live `AnalyticsService` (all 7 candle intervals, VWAPs, VPIN, 5-level
  OFI on a real L2 book) on trades and book deltas, against the engine alone.

Usage: .venv/bin/python bench/bench_analytics.py [--quick] [--pvv-python /path/to/python]
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from scipy.special import ndtri

from benchlib import BenchFeed, bench_instruments  # noqa: I001
from quantsaas.analytics.greeks import bs_greeks, bs_price
from quantsaas.analytics.iv import implied_vol_bs
from quantsaas.analytics.live import INPUTS, AnalyticsConfig, AnalyticsService
from quantsaas.analytics.ofi import BookState, OfiStream, ofi_buckets
from quantsaas.analytics.vpin import Classifier, VpinConfig, VpinStream, vpin_batch
from quantsaas.bus import Bus
from quantsaas.engine import Engine
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Side, Trade


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def line(name: str, rate: float, unit: str, base: float, base_name: str) -> None:
    print(f"  {name:<38} {rate:>14,.0f} {unit}/s   x{rate / base:>8.1f} vs {base_name}")


def options(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    delta = rng.uniform(0.01, 0.99, n)
    t = np.exp(rng.uniform(math.log(1 / 8760), math.log(2.0), n))
    sigma = rng.uniform(0.05, 1.5, n)
    k = 100.0 * np.exp(-ndtri(delta) * sigma * np.sqrt(t) + 0.5 * sigma**2 * t)
    call = rng.random(n) < 0.5
    return call, k, t, sigma


def cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def scalar_greeks(call: bool, s: float, k: float, t: float, sigma: float) -> tuple[float, ...]:
    vt = sigma * math.sqrt(t)
    d1 = (math.log(s / k) + 0.5 * sigma * sigma * t) / vt
    d2 = d1 - vt
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    sign = 1.0 if call else -1.0
    price = sign * (s * cdf(sign * d1) - k * cdf(sign * d2))
    delta = sign * cdf(sign * d1)
    gamma = pdf / (s * vt)
    vega = s * pdf * math.sqrt(t) / 100
    theta = -s * pdf * sigma / (2 * math.sqrt(t)) / 365
    rho = sign * k * t * cdf(sign * d2) / 100
    return price, delta, gamma, vega, theta, rho


def scalar_iv(price: float, call: bool, s: float, k: float, t: float) -> float:
    lo, hi, sigma = 1e-6, 10.0, 0.5
    for _ in range(200):
        p, _, _, vega, _, _ = scalar_greeks(call, s, k, t, sigma)
        if p > price:
            hi = sigma
        else:
            lo = sigma
        step = (p - price) / (vega * 100) if vega > 0 else math.inf
        new = sigma - step
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if abs(new - sigma) < 1e-12 * sigma:
            return new
        sigma = new
    return sigma


PVV_SCRIPT = """
import time, numpy as np, py_vollib_vectorized as pvv
n = {n}
rng = np.random.default_rng(1)
k = rng.uniform(50, 150, n); t = rng.uniform(0.01, 2, n); s = rng.uniform(0.1, 1.5, n)
flag = np.where(rng.random(n) < 0.5, 'c', 'p')
args = (flag, 100.0, k, t, 0.0, s)
pvv.get_all_greeks(flag[:10], 100.0, k[:10], t[:10], 0.0, s[:10], model='black_scholes',
                   return_as='dict')
t0 = time.perf_counter()
pvv.get_all_greeks(flag, 100.0, k, t, 0.0, s, model='black_scholes', return_as='dict')
print(n / (time.perf_counter() - t0))
"""


def py_vollib_vectorized(python: str | None, n: int) -> float | None:
    if python is None:
        return None
    try:
        done = subprocess.run(
            [python, "-c", PVV_SCRIPT.format(n=n)], capture_output=True, text=True, timeout=600
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"  py_vollib_vectorized: not run ({exc})")
        return None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        print(f"  py_vollib_vectorized: fails in this environment: {last[:150]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def bench_greeks(n: int, pvv_python: str | None) -> None:
    print(f"greeks of {n:,} options (price + 5 greeks):")
    call, k, t, sigma = options(n)
    rate = n / best_of(3, lambda: bs_greeks(call, 100.0, k, t, sigma))
    sample = 20_000
    rows = list(zip(call[:sample].tolist(), k[:sample], t[:sample], sigma[:sample], strict=True))
    base = sample / best_of(1, lambda: [scalar_greeks(c, 100.0, *r) for c, *r in rows])
    print(f"  {'scalar Python loop (baseline)':<38} {base:>14,.0f} options/s")
    line("bs_greeks (numpy, vectorised)", rate, "options", base, "scalar")
    pvv = py_vollib_vectorized(pvv_python, min(n, 100_000))
    if pvv is not None:
        print(f"  {'py_vollib_vectorized get_all_greeks':<38} {pvv:>14,.0f} options/s")
        line("bs_greeks vs py_vollib_vectorized", rate, "options", pvv, "pvv")


def bench_iv(n: int) -> None:
    print(f"implied vol of {n:,} options (1 h .. 2 y, deltas 0.01..0.99):")
    call, k, t, sigma = options(n, seed=2)
    price = bs_price(call, 100.0, k, t, sigma)
    start = time.perf_counter()
    iv = implied_vol_bs(price, call, 100.0, k, t)
    rate = n / (time.perf_counter() - start)
    repriced = bs_price(call, 100.0, k, t, iv)
    sample = 5_000
    rows = list(zip(price[:sample], call[:sample].tolist(), k[:sample], t[:sample], strict=True))
    start = time.perf_counter()
    for p, c, kk, tt in rows:
        scalar_iv(p, c, 100.0, kk, tt)
    base = sample / (time.perf_counter() - start)
    print(f"  {'scalar Newton-bisection (baseline)':<38} {base:>14,.0f} solves/s")
    line("implied_vol_bs (numpy, vectorised)", rate, "solves", base, "scalar")
    iv_error = np.nanmax(np.abs(iv - sigma))
    price_error = np.nanmax(np.abs(repriced - price))
    print(
        f"  solved {np.isfinite(iv).mean():.4%}, max |iv - sigma| {iv_error:.1e}"
        f", max |price error| {price_error:.1e} (S = 100)"
    )


def bench_vpin(n: int) -> None:
    print(f"VPIN over {n:,} trades (V = 100 trades' volume, n = 50 buckets):")
    rng = np.random.default_rng(3)
    prices = 60_000 + np.cumsum(rng.normal(0, 2, n))
    volumes = rng.integers(1, 1_000_000, n)
    sides = rng.random(n) < 0.5
    size = int(volumes[:100].sum())
    sample = min(n, 100_000)
    classifiers: tuple[Classifier, ...] = ("aggressor", "bvc")
    for classifier in classifiers:
        config = VpinConfig(size, 50, classifier, sigma=2.0)

        def batch(config: VpinConfig = config) -> object:
            return vpin_batch(config, prices, volumes, sides)

        rate = n / best_of(3, batch)
        stream = VpinStream(config)
        rows = list(zip(prices[:sample].tolist(), volumes[:sample].tolist(),
                        sides[:sample].tolist(), strict=True))  # fmt: skip
        start = time.perf_counter()
        for p, v, b in rows:
            stream.on_trade(p, v, b)
        base = sample / (time.perf_counter() - start)
        print(f"  {'VpinStream ' + classifier + ' (baseline)':<38} {base:>14,.0f} trades/s"
              f"   = {1e6 / base:.2f} us/trade")  # fmt: skip
        line(f"vpin_batch {classifier}", rate, "trades", base, "stream")


def bench_ofi(n: int, levels: int = 5) -> None:
    print(f"OFI over {n:,} book states ({levels} levels, 1 s buckets):")
    rng = np.random.default_rng(4)
    moves = rng.integers(-1, 2, (n, 1))
    base_px = 600_000 + np.cumsum(moves, axis=0)
    steps = np.arange(levels)
    bp, ap = base_px - steps, base_px + 1 + steps
    bq, aq = rng.integers(1, 100, (n, levels)), rng.integers(1, 100, (n, levels))
    ts = np.arange(n, dtype=np.int64) * 1_000_000  # 1000 events per second
    rate = n / best_of(3, lambda: ofi_buckets(ts, bp, bq, ap, aq, 1_000_000_000))
    sample = min(n, 100_000)
    states = [
        BookState(tuple(bp[i].tolist()), tuple(bq[i].tolist()), tuple(ap[i].tolist()),
                  tuple(aq[i].tolist()))
        for i in range(sample)
    ]  # fmt: skip
    stamps = ts[:sample].tolist()
    stream = OfiStream(levels, 1_000_000_000)
    start = time.perf_counter()
    for state, stamp in zip(states, stamps, strict=True):
        stream.on_state(state, stamp)
    base = sample / (time.perf_counter() - start)
    print(f"  {'OfiStream (baseline)':<38} {base:>14,.0f} events/s   = {1e6 / base:.2f} us/event")
    line("ofi_buckets (numpy batch)", rate, "events", base, "stream")


def bench_live(n: int) -> None:
    print(f"live AnalyticsService per event ({n:,} trades and {n:,} book deltas):")
    instrument: Instrument = bench_instruments()[0]

    def run(with_analytics: bool) -> tuple[float, float]:
        bus = Bus()
        engine = Engine([BenchFeed([instrument], rate=1.0)], bus.publish)
        if with_analytics:  # wired as the composition root does
            config = AnalyticsConfig(vpin_bucket_volume={instrument.symbol: 10**9})
            service = AnalyticsService(engine.instruments, engine.books, bus.publish, config)
            bus.consume("analytics", INPUTS, service.on_envelope)
        bids = tuple((6_000_000 - i * 10, 100_000_000) for i in range(100))
        asks = tuple((6_000_010 + i * 10, 100_000_000) for i in range(100))
        engine.on_event(BookSnapshot(instrument, bids, asks, 1, 1, 1))
        rng = np.random.default_rng(5)
        sizes = rng.integers(1, 10**8, n).tolist()
        trades = [
            Trade(instrument, 6_000_000, s, Side.BUY if s % 2 else Side.SELL, str(i), i * 10**6,
                  i * 10**6)
            for i, s in enumerate(sizes)
        ]  # fmt: skip
        deltas = [
            BookDelta(instrument, ((6_000_000 - 10 * (i % 5), s),), (), i + 2, i * 10**6,
                      i * 10**6)
            for i, s in enumerate(sizes)
        ]  # fmt: skip
        start = time.perf_counter()
        for trade in trades:
            engine.on_event(trade)
        per_trade = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for delta in deltas:
            engine.on_event(delta)
        return per_trade, (time.perf_counter() - start) / n

    bare_trade, bare_delta = run(False)
    trade, delta = run(True)
    print(
        f"  trade: engine alone {bare_trade * 1e6:.2f} us, with analytics {trade * 1e6:.2f} us"
        f"  (analytics +{(trade - bare_trade) * 1e6:.2f} us, x{trade / bare_trade:.1f})"
    )
    print(f"  book delta: engine alone {bare_delta * 1e6:.2f} us, with analytics "
          f"{delta * 1e6:.2f} us  (analytics +{(delta - bare_delta) * 1e6:.2f} us,"
          f" x{delta / bare_delta:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test")
    parser.add_argument("--pvv-python", help="a python with py_vollib_vectorized installed")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    bench_greeks(1_000_000 // scale, args.pvv_python)
    bench_iv(1_000_000 // scale)
    bench_vpin(5_000_000 // scale)
    bench_ofi(2_000_000 // scale)
    bench_live(50_000 // scale)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
