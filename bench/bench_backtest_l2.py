"""L2 backtest throughput: the quoting market maker on a synthetic stream, events per second.

Stream: the seeded simulator (feeds/sim_book.py), BTC/USD, `--rate` order-flow events per
simulated second for `--seconds`: one opening snapshot, then book deltas (1-3 levels) and
trades. A **message** is one model event (a delta, a snapshot or a trade); a **row** is one
level change or trade (what hftbacktest counts as an event). The strategy in every engine:
every 100 ms quote 0.01 BTC at the best bid and ask, post-only, replace a quote whose price is
no longer the best, at most 10 lots either way; 10 ms order latency (entry and cancel),
risk-averse queue, partial fills, maker -0.5 bp / taker 7 bp.

* `reference`: our event engine (backtest/engine.py + fills.py) with examples/market_maker.py,
  pure Python, on the first `--reference-messages` messages (it is the slow, general path).
* `kernel`: backtest/kernel.py, the loop + fill model + accounting compiled with Numba
  (`cold` = first call in this process, including JIT or loading its on-disk cache; `warm` =
  median of `--repeats`). It equals the reference fill for fill (tests/backtest/test_kernel.py);
  this run checks that again on the reference's prefix. Column building is timed apart.
* `hftbacktest` 2.4.4 in its own venv (`--hbt-python`, default /tmp/hbtvenv/bin/python; create
  it with `python3 -m venv /tmp/hbtvenv && /tmp/hbtvenv/bin/pip install hftbacktest==2.4.4`),
  the same strategy as a Numba function driven by `elapse(100 ms)` (bench/hftbacktest_runner.py)
  on the same rows converted to its event format (floats, as it takes them).

Prints rows/s and messages/s and the same-run ratios. Target: kernel >= 1,000,000 events/s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from quantsaas.backtest import Backtest, BacktestConfig, Fees
from quantsaas.backtest.kernel import CLEAR, COMPILED, NOOP, TRADE, columns, run_market_maker
from quantsaas.backtest.runner import load_strategy
from quantsaas.backtest.sources import sim_events, sim_instruments
from quantsaas.feeds.sim_instruments import SimConfig
from quantsaas.model import Side

MS = 1_000_000
T0 = 1_704_067_200_000_000_000
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "market_maker.py"
HBT_EVENT_DTYPE = np.dtype(
    [
        ("ev", "u8"),
        ("exch_ts", "i8"),
        ("local_ts", "i8"),
        ("px", "f8"),
        ("qty", "f8"),
        ("order_id", "u8"),
        ("ival", "i8"),
        ("fval", "f8"),
    ],
    align=True,
)
EXCH, LOCAL, BUY, SELL = 1 << 31, 1 << 30, 1 << 29, 1 << 28
DEPTH, TRADE_EV, SNAPSHOT = 1, 2, 4


def hbt_events(cols: Any, price_scale: int, size_scale: int) -> np.ndarray:
    """Our rows in hftbacktest's event format (the opening snapshot as snapshot events)."""
    keep = cols.kind != CLEAR
    keep &= cols.kind != NOOP
    kind, side = cols.kind[keep], cols.side[keep]
    out = np.zeros(int(keep.sum()), dtype=HBT_EVENT_DTYPE)
    first_delta = int(np.flatnonzero(cols.last)[0]) + 1  # rows of the opening snapshot
    snapshot = np.zeros(len(cols.kind), dtype=bool)
    snapshot[:first_delta] = True
    snapshot = snapshot[keep]
    ev = np.where(kind == TRADE, TRADE_EV, np.where(snapshot, SNAPSHOT, DEPTH))
    buy = np.where(kind == TRADE, side > 0, side == 0)
    out["ev"] = EXCH | LOCAL | ev | np.where(buy, BUY, SELL)
    out["exch_ts"] = cols.ts[keep]
    out["local_ts"] = cols.ts[keep]
    out["px"] = cols.price[keep] / 10**price_scale
    out["qty"] = cols.size[keep] / 10**size_scale
    return out


def run_hbt(args: argparse.Namespace, data: np.ndarray, instrument: Any) -> dict[str, Any] | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.npy"
        np.save(path, data)
        command = [
            args.hbt_python,
            str(Path(__file__).with_name("hftbacktest_runner.py")),
            str(path),
            str(instrument.tick_size / 10**instrument.price_scale),
            str(instrument.lot_size / 10**instrument.size_scale),
            "0.01",
            str(100 * MS),
            str(10 * MS),
            "10",
            "-0.00005",
            "0.0007",
            str(args.repeats),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"hftbacktest: not run ({exc})")
            return None
    if done.returncode != 0:
        print(f"hftbacktest: failed: {done.stderr.strip()[-400:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--seconds", type=int, default=4_000)
    cli.add_argument("--rate", type=float, default=400.0, help="simulator events/s")
    cli.add_argument("--reference-messages", type=int, default=200_000)
    cli.add_argument("--repeats", type=int, default=5)
    cli.add_argument("--hbt-python", default="/tmp/hbtvenv/bin/python")
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    if args.quick:
        args.seconds, args.reference_messages, args.repeats = 300, 20_000, 2
    (instrument,) = sim_instruments(["BTC/USD"])
    began = time.perf_counter()
    sim = SimConfig(events_per_second=args.rate, seed=11)
    events = list(sim_events(["BTC/USD"], T0, T0 + args.seconds * 1000 * MS, sim))
    generated = time.perf_counter() - began
    began = time.perf_counter()
    cols = columns(events, instrument)
    built = time.perf_counter() - began
    rows, messages = len(cols.kind), cols.messages
    print(
        f"stream: {messages:,} messages, {rows:,} rows (simulated in {generated:.1f} s; "
        f"columns built in {built:.2f} s = {messages / built:,.0f} messages/s)"
    )
    fees = Fees.parse("-0.5bp,7bp")
    config = BacktestConfig(order_latency_ns=10 * MS, fees=fees, curve_ns=1000 * MS)
    size = instrument.size("0.01")
    cash = 1_000_000 * 10 ** (instrument.price_scale + instrument.size_scale + 1)

    def kernel(cols_: Any) -> Any:
        return run_market_maker(cols_, instrument, 100 * MS, size, 10, fees, 10 * MS, cash)

    # reference engine on a prefix, and the kernel on the same prefix: the same fills
    prefix = events[: args.reference_messages]
    strategy = load_strategy(EXAMPLE)(every_ms=100, size="0.01", max_lots=10)
    began = time.perf_counter()
    reference = Backtest(strategy, [instrument], config).run(prefix)
    ref_s = time.perf_counter() - began
    ref_cols = columns(prefix, instrument)
    started = time.perf_counter()
    check = kernel(ref_cols)
    cold_s = time.perf_counter() - started
    same = [tuple(int(v) for v in row[:4]) for row in check.fills] == [
        (f.order_id, 1 if f.side is Side.BUY else -1, f.price, f.size) for f in reference.fills
    ]
    warm = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        result = kernel(cols)
        warm.append(time.perf_counter() - started)
    warm_s = median(warm)
    ref_rows = len(ref_cols.kind)
    print(f"kernel compiled with Numba: {COMPILED}; equal to the reference on its prefix: {same}")
    table = [
        ("reference (Python)", ref_s, ref_rows, len(prefix)),
        ("kernel cold (prefix)", cold_s, ref_rows, len(prefix)),
        ("kernel warm", warm_s, rows, messages),
    ]
    hbt = run_hbt(args, hbt_events(cols, instrument.price_scale, instrument.size_scale), instrument)
    if hbt is not None:
        table.append(("hftbacktest cold", hbt["cold_s"], hbt["rows"], messages))
        table.append(("hftbacktest warm", hbt["warm_s"], hbt["rows"], messages))
    print(f"{'engine':24} {'seconds':>9} {'rows/s':>14} {'messages/s':>14}")
    for name, seconds, n_rows, n_messages in table:
        print(f"{name:24} {seconds:9.3f} {n_rows / seconds:14,.0f} {n_messages / seconds:14,.0f}")
    kernel_rate = rows / warm_s
    print(
        f"kernel: {len(result.fills):,} fills, {result.orders:,} orders, position {result.position}"
    )
    print(f"ratio kernel warm / reference (rows/s): {kernel_rate / (ref_rows / ref_s):,.1f}")
    if hbt is not None:
        hbt_rate = hbt["rows"] / hbt["warm_s"]
        print(f"hftbacktest: {hbt['orders']:,} orders, {hbt['trades']:,} fills")
        print(f"ratio kernel warm / hftbacktest warm (rows/s): {kernel_rate / hbt_rate:.2f}")
    verdict = "met" if kernel_rate >= 1e6 else "NOT met"
    print(f"target >= 1,000,000 events/s: {verdict} ({kernel_rate:,.0f} rows/s)")


if __name__ == "__main__":
    main()
