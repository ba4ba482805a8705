"""`quantsaas backtest STRATEGY.py ...`: run a strategy over simulated, recorded or imported
markets in this process, print a summary, save the result.

Results are saved under `{data dir}/backtests/{owner}/` (results.py). With `--user EMAIL` the
owner is that account (looked up in the accounts database), and a server sharing the data dir
serves the result read-only at `/api/v1/backtests` to that user; without it the owner is
`local` and nothing serves it. There is deliberately no upload route: the server only reads
what runs in users' own processes wrote, it never receives or runs code.

`--sweep k=a,b,c` (repeatable: the cartesian product) runs one backtest per combination in
parallel worker processes (`--jobs`, default the CPU count) and prints one row each.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from quantsaas.backtest.engine import BacktestConfig
from quantsaas.backtest.money import Fees
from quantsaas.backtest.results import ResultStore
from quantsaas.config import Settings
from quantsaas.errors import AccountError, ConfigError, QuantError
from quantsaas.store.history import HistoryStore, parse_time
from quantsaas.store.progress import ProgressBar

if TYPE_CHECKING:
    # the runner (and the feeds, the engine and the store it drives) loads only to run a
    # backtest: `serve` builds this parser too
    from quantsaas.backtest.runner import RunSpec

MS = 1_000_000
DATA_KINDS = ("sim", "recorded", "imported")
"""backtest.runner.DATA_KINDS (tests/test_runtime_imports.py keeps them equal)."""


def add_commands(commands: Any) -> None:
    parser = commands.add_parser("backtest", help="run a strategy file over sim/recorded data")
    parser.add_argument("strategy", type=Path, help="a Python file defining a Strategy")
    parser.add_argument("--data", choices=DATA_KINDS, default="sim")
    parser.add_argument("--data-dir", type=Path, help="history directory (default ./data)")
    parser.add_argument("--venue", help="venue of the symbols (default: any that has them)")
    parser.add_argument("--symbols", default="", help="comma-separated, e.g. BTC/USD,ETH/USD")
    parser.add_argument("--from", dest="start", help="ISO 8601 or ns (sim: 2024-01-01)")
    parser.add_argument("--to", dest="end", help="ISO 8601 or ns, exclusive (sim: +1 h)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="order entry latency")
    parser.add_argument("--md-latency-ms", type=float, default=0.0, help="market-data latency")
    parser.add_argument("--fees", default="0", help="MAKER,TAKER rates: -0.5bp,7bp or 0.001")
    parser.add_argument("--queue", default="risk-averse", help="risk-averse | prob:N | touch")
    parser.add_argument("--no-partial", action="store_true", help="fill resting orders whole")
    parser.add_argument("--cash", default="1000000", help="starting cash per quote currency")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    parser.add_argument("--rate", type=float, default=50.0, help="simulator events/s/symbol")
    parser.add_argument("--param", action="append", default=[], help="k=v strategy parameter")
    parser.add_argument("--sweep", action="append", default=[], help="k=a,b,c: one run each")
    parser.add_argument("--jobs", type=int, help="sweep worker processes (default: CPUs)")
    parser.add_argument("--vector", action="store_true", help="vectorised bar path")
    parser.add_argument(
        "--direct", action="store_true", help="skip the engine and bus (faster, same fills)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--user", help="save the result for this account (served by the API)")
    parser.add_argument("--db", help="accounts database URL (for --user)")
    parser.add_argument("--no-save", action="store_true", help="do not save the result")


def _spec(args: argparse.Namespace, data_dir: Path) -> RunSpec:
    from quantsaas.backtest.runner import RunSpec, parse_param_pairs

    if args.latency_ms < 0 or args.md_latency_ms < 0:
        raise ConfigError("latencies must not be negative")
    symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
    config = BacktestConfig(
        order_latency_ns=round(args.latency_ms * MS),
        md_latency_ns=round(args.md_latency_ms * MS),
        fees=Fees.parse(args.fees),
        queue=args.queue,
        partial=not args.no_partial,
        cash={},
    )
    spec = RunSpec(
        strategy_path=args.strategy,
        params=parse_param_pairs(args.param),
        data=args.data,
        data_dir=data_dir,
        venue=args.venue,
        symbols=symbols,
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
        config=config,
        seed=args.seed,
        rate=args.rate,
        vector=args.vector,
        direct=args.direct,
    )
    return spec


def _with_cash(spec: RunSpec, text: str) -> RunSpec:
    from quantsaas.backtest.runner import instruments_for

    store = None if spec.data == "sim" else HistoryStore(spec.data_dir)
    currencies = {i.quote for i in instruments_for(spec, store)}
    config = replace(spec.config, cash=dict.fromkeys(currencies, text))
    return replace(spec, config=config)


def sweep_specs(spec: RunSpec, sweeps: list[str]) -> list[RunSpec]:
    axes: list[tuple[str, list[str]]] = []
    for item in sweeps:
        key, sep, values = item.partition("=")
        choices = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not choices:
            raise ConfigError(f"--sweep takes k=a,b,c, not {item[:40]!r}")
        axes.append((key.strip(), choices))
    specs = []
    for combo in itertools.product(*(values for _, values in axes)):
        params = {**spec.params, **dict(zip((k for k, _ in axes), combo, strict=True))}
        specs.append(replace(spec, params=params))
    return specs


def _owner(args: argparse.Namespace, settings: Settings) -> str:
    if not args.user:
        return "local"
    from quantsaas.accounts.service import Accounts
    from quantsaas.accounts.tiers import load_tiers

    async def find() -> int:
        url = args.db or settings.accounts_database
        accounts = await Accounts.open(url, dict(load_tiers(settings.tiers_file)))
        try:
            return (await accounts.find_user(args.user)).id
        finally:
            await accounts.close()

    return f"u{asyncio.run(find())}"


def _num(metrics: dict[str, Any], name: str, fmt: str) -> str:
    value = metrics.get(name)
    return "-" if value is None else format(value, fmt)


def _headline(result: dict[str, Any]) -> list[str]:
    row = []
    for currency, block in result["currencies"].items():
        m = block["metrics"]
        row += [
            f"{block['equity']} {currency}",
            _num(m, "total_return", "+.4%"),
            _num(m, "sharpe", ".2f"),
            _num(m, "sortino", ".2f"),
            _num(m, "max_drawdown", ".2%"),
            f"{m.get('fees', '0')}",
            _num(m, "fill_ratio", ".2%"),
        ]
    return row


HEADER = ["params", "equity", "return", "sharpe", "sortino", "max dd", "fees", "fill ratio"]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) for r in [HEADER, *rows]
    ]
    return "\n".join(lines)


def _brief(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "owner", "strategy", "data", "config", "elapsed_s", "trade_count", "fill_count")
    out = {k: result[k] for k in keep if k in result}
    out["currencies"] = {
        c: {k: v for k, v in block.items() if k != "curve"}
        for c, block in result["currencies"].items()
    }
    return out


def _one(spec: RunSpec) -> dict[str, Any]:
    from quantsaas.backtest.runner import run_spec

    return run_spec(spec)


def backtest(args: argparse.Namespace) -> int:
    from quantsaas.backtest.runner import run_spec

    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    data_dir = args.data_dir or settings.data_dir
    spec = _with_cash(_spec(args, data_dir), args.cash)
    specs = sweep_specs(spec, args.sweep) if args.sweep else [spec]
    owner = _owner(args, settings) if not args.no_save else "local"
    store = ResultStore(data_dir)
    bar = ProgressBar("backtest")
    results: list[dict[str, Any]] = []
    if len(specs) == 1:
        results.append(run_spec(specs[0], lambda done, total: bar.update(0, done, total)))
    else:
        jobs = max(1, min(args.jobs or os.cpu_count() or 1, len(specs)))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(_one, s) for s in specs]
            for done, future in enumerate(as_completed(futures), start=1):
                bar.update(0, done, len(specs))
                results.append(future.result())
        results.sort(
            key=lambda r: orjson.dumps(r["strategy"]["params"], option=orjson.OPT_SORT_KEYS)
        )
    bar.close()
    if not args.no_save:
        for result in results:
            result["id"] = store.save(owner, result)
            result["owner"] = owner
    if args.json:
        payload: Any = [_brief(r) for r in results] if len(results) > 1 else _brief(results[0])
        print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        rows = [
            [" ".join(f"{k}={v}" for k, v in r["strategy"]["params"].items()), *_headline(r)]
            for r in results
        ]
        print(_table(rows))
        for r in results:
            if "id" in r:
                print(f"saved {r['id']} ({owner}) in {store.root}", file=sys.stderr)
    return 0


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (QuantError, AccountError) as exc:
            print(f"quantsaas: error: {exc}", file=sys.stderr)
            return 2

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"backtest": _guarded(backtest)}
