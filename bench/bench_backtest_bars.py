"""SMA crossover on 1-minute bars: bars per second, ours beside vectorbt and backtrader.

Data: research §A.10's synthetic bars (`--bars`, default 100,000; seed 42): close an integer
count of micro-units moving +-20 per bar, open = previous close, high/low outside, volume far
above the order size. Strategy: SMA(10) vs SMA(30), long 1 on a strict up-cross, flat on a
strict down-cross, filled at the signal bar's close, 10 bp per fill, cash 1e6.

* `ours events`: examples/sma_crossover.py's `on_bar` through the event engine (Candle
  events, exact integers, fills, accounting, equity curve): pure Python;
* `ours vector`: the same file's `vector()` (NumPy signals) + exact accounting of the fills
  (backtest/vector.py);
* `vectorbt` 1.2.0 and `backtrader` 1.9.78.123, each in its own venv (`--vectorbt-python`,
  `--backtrader-python`; default /tmp/vbtvenv and /tmp/btvenv; create them with
  `python3 -m venv /tmp/vbtvenv && /tmp/vbtvenv/bin/pip install vectorbt==1.2.0`, the same for
  backtrader), through bench/bars_runner.py: vectorbt `from_signals` after `MA.run`, backtrader
  with cheat-on-close, both on the same exact-integer crossing signals (bars_runner.py says
why; the signal computation is inside their timed call, as ours is inside ours).

Cold = first call in a fresh process (imports and JIT included for the others; our import of
the strategy file included), warm = median of `--repeats`. Every engine's round trips and
final equity are printed beside ours: equal trips, equity within float rounding. Target: ours
>= vectorbt (bars/s, warm).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from backtest.test_sma import INSTRUMENT, MINUTE, T0, synthetic_bars  # noqa: E402
from quantsaas.backtest import Backtest, BacktestConfig, Fees  # noqa: E402
from quantsaas.backtest.roundtrips import round_trips  # noqa: E402
from quantsaas.backtest.runner import load_strategy  # noqa: E402
from quantsaas.backtest.vector import Bars, run_vector  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sma_crossover.py"


def ours(bars: list[Any], vector: bool, repeats: int) -> tuple[float, float, int, str]:
    """Cold: the first run in this process (loading the strategy file included); warm: the
    run alone, from bars already loaded (Candle events, or the int64 arrays of `Bars`)."""
    config = BacktestConfig(fees=Fees.parse("0.001"), curve_ns=MINUTE)
    cls = None
    frame = Bars.from_candles(bars)

    def once() -> Any:
        nonlocal cls
        if cls is None:
            cls = load_strategy(EXAMPLE)
        strategy: Any = cls(fast=10, slow=30, size="1")
        if vector:
            return run_vector(strategy.vector(frame), frame, config)
        return Backtest(strategy, [INSTRUMENT], config).run(bars)

    began = time.perf_counter()
    run = once()
    cold = time.perf_counter() - began
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        once()
        times.append(time.perf_counter() - began)
    trips = sum(1 for t in round_trips(run.fills, run.units) if t.exit_ns is not None)
    equity = run.units.format_cash("USD", run.account.equity("USD"))
    return cold, median(times), trips, equity


def other(python: str, engine: str, path: Path, repeats: int) -> dict[str, Any] | None:
    command = [python, str(Path(__file__).with_name("bars_runner.py")), engine, str(path)]
    try:
        done = subprocess.run(
            [*command, "10", "30", str(repeats)], capture_output=True, text=True, timeout=1800
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{engine}: not run ({exc})")
        return None
    if done.returncode != 0:
        print(f"{engine}: failed: {done.stderr.strip()[-300:]}")
        return None
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    cli = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    cli.add_argument("--bars", type=int, default=100_000)
    cli.add_argument("--repeats", type=int, default=3)
    cli.add_argument("--vectorbt-python", default="/tmp/vbtvenv/bin/python")
    cli.add_argument("--backtrader-python", default="/tmp/btvenv/bin/python")
    cli.add_argument("--quick", action="store_true")
    args = cli.parse_args()
    if args.quick:
        args.bars, args.repeats = 10_000, 1
    bars = synthetic_bars(args.bars, 42)
    rows: list[tuple[str, float, float, int, str]] = []
    for name, vector in (("ours events", False), ("ours vector", True)):
        rows.append((name, *ours(bars, vector, args.repeats)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.npz"
        columns: dict[str, Any] = {
            k: np.array([getattr(b, k) for b in bars], dtype=np.int64)
            for k in ("open", "high", "low", "close", "volume")
        }
        np.savez(path, **columns)
        for engine, python in (
            ("vectorbt", args.vectorbt_python),
            ("backtrader", args.backtrader_python),
        ):
            result = other(python, engine, path, args.repeats)
            if result is not None:
                equity = f"{result['equity']:.6f}"
                rows.append(
                    (engine, result["cold_s"], result["warm_s"], result["round_trips"], equity)
                )
    print(f"{args.bars:,} bars from {T0}; SMA(10/30), 10 bp, fill at the signal close")
    print(
        f"{'engine':14} {'cold s':>9} {'warm s':>9} {'bars/s warm':>13} {'trips':>7}  final equity"
    )
    for name, cold, warm, trips, equity in rows:
        print(f"{name:14} {cold:9.3f} {warm:9.3f} {args.bars / warm:13,.0f} {trips:7d}  {equity}")
    by_name = {name: args.bars / warm for name, _, warm, _, _ in rows}
    for base in ("vectorbt", "backtrader"):
        if base in by_name:
            for ours_name in ("ours vector", "ours events"):
                ratio = by_name[ours_name] / by_name[base]
                print(f"ratio {ours_name} / {base} (bars/s warm): {ratio:.2f}")


if __name__ == "__main__":
    main()
