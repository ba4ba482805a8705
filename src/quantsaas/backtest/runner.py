"""One backtest run from a strategy file and a data selection: what the CLI (and a sweep's
worker processes) call. Pluggable by design: `run_spec` builds the event source and feeds a
`Backtest`; a runtime built by the composition root can feed the same `Backtest` from its bus.

A strategy file defines exactly one subclass of `quantsaas.backtest.Strategy` (or names one
`STRATEGY = ...`). `--param k=v` values are converted to the type of the default in the
class's `params` (int, float, bool, str). It runs in this process: the server never runs a
strategy.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantsaas.analytics.candles import INTERVALS, Candle
from quantsaas.backtest.engine import Backtest, BacktestConfig
from quantsaas.backtest.live import EventsFeed, run_on_runtime, stored_feeds_for
from quantsaas.backtest.results import build_result
from quantsaas.backtest.sources import sim_events, sim_instruments, stored_bars, stored_events
from quantsaas.backtest.strategy import Strategy
from quantsaas.backtest.vector import Bars, run_vector
from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.feeds.base import Feed
from quantsaas.feeds.sim_instruments import SimConfig
from quantsaas.model import Instrument, symbol_from_text
from quantsaas.store.history import HistoryStore

NS = 1_000_000_000
SIM_START = 1_704_067_200 * NS
FAR_FUTURE = 4_102_444_800 * NS
"""2024-01-01T00:00:00Z: where a simulated run starts unless told."""
CURVE_STEPS = (NS, 10 * NS, 60 * NS, 300 * NS, 900 * NS, 3600 * NS, 86_400 * NS)
MAX_CURVE_POINTS = 20_000
DATA_KINDS = ("sim", "recorded", "imported")
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class RunSpec:
    strategy_path: Path
    params: dict[str, str] = field(default_factory=dict)
    data: str = "sim"
    data_dir: Path = Path("data")
    venue: str | None = None
    symbols: tuple[str, ...] = ()
    start: int | None = None
    end: int | None = None
    config: BacktestConfig = field(default_factory=BacktestConfig)
    seed: int = 7
    rate: float = 50.0
    vector: bool = False
    direct: bool = False
    """Feed the backtest straight from the source, without the engine and bus (faster)."""


def load_strategy(path: Path) -> type[Strategy]:
    """The Strategy subclass a file defines (imported under a private module name)."""
    if not path.is_file():
        raise ConfigError(f"no strategy file {str(path)[:100]}")
    name = f"quantsaas_strategy_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot load {str(path)[:100]} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    named = getattr(module, "STRATEGY", None)
    if inspect.isclass(named) and issubclass(named, Strategy):
        return named
    found = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, Strategy)
        and value is not Strategy
        and value.__module__ == name
    ]
    if len(found) != 1:
        raise ConfigError(
            f"{path.name} must define exactly one Strategy subclass (or STRATEGY = ...), "
            f"found {len(found)}"
        )
    return found[0]


def convert_params(cls: type[Strategy], given: dict[str, str]) -> dict[str, Any]:
    """`--param` text -> the type of each default; unknown names are an error."""
    out: dict[str, Any] = {}
    for key, text in given.items():
        if key not in cls.params:
            known = ", ".join(cls.params) or "none"
            raise ConfigError(f"unknown parameter {key!r} (known: {known})")
        default = cls.params[key]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1", "yes")
            elif isinstance(default, int):
                out[key] = int(text)
            elif isinstance(default, float):
                out[key] = float(text)
            else:
                out[key] = text
        except ValueError:
            raise ConfigError(
                f"parameter {key}={text[:40]!r} is not a {type(default).__name__}"
            ) from None
    return out


def parse_param_pairs(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param takes k=v, not {pair[:40]!r}")
        out[key.strip()] = value.strip()
    return out


def bars_only(cls: type[Strategy]) -> bool:
    """True for a strategy that reacts to bars alone (then the store's candles are enough)."""
    return cls.bar_interval is not None and all(
        getattr(cls, name) is getattr(Strategy, name) for name in ("on_trade", "on_book")
    )


def curve_step(span_ns: int, floor_ns: int = NS) -> int:
    for step in CURVE_STEPS:
        if step >= floor_ns and span_ns // step <= MAX_CURVE_POINTS:
            return step
    return CURVE_STEPS[-1]


def instruments_for(spec: RunSpec, store: HistoryStore | None) -> list[Instrument]:
    symbols = [symbol_from_text(s) for s in spec.symbols] or (
        ["BTC/USD"] if spec.data == "sim" else []
    )
    if spec.data == "sim":
        if spec.venue not in (None, "sim"):
            raise ConfigError("--data sim has the venue sim only")
        return sim_instruments(symbols)
    assert store is not None
    if not symbols:
        raise ConfigError("--symbols is required with recorded or imported data")
    found = []
    for symbol in symbols:
        matches = [
            i
            for i in store.instruments()
            if i.symbol == symbol and (spec.venue is None or i.venue == spec.venue)
        ]
        if not matches:
            raise ConfigError(f"no history of {symbol} in {spec.data_dir}")
        found.extend(matches)
    return found


def _progress(
    events: Iterable[Any], start: int, end: int, report: Progress | None
) -> Iterator[Any]:
    if report is None:
        yield from events
        return
    total = max(1, (end - start) // NS)
    count = 0
    last = start
    for event in events:
        count += 1
        if count % 20_000 == 0:
            last = getattr(event, "ts_event", last)
            report(min(total, max(0, (last - start) // NS)), total)
        yield event
    report(total, total)


def _per_part(report: Progress) -> Callable[[object, int, int], None]:
    """Several feeds' progress summed into one (done, total)."""
    parts: dict[object, tuple[int, int]] = {}

    def update(part: object, done: int, total: int) -> None:
        parts[part] = (done, total)
        report(sum(d for d, _ in parts.values()), sum(t for _, t in parts.values()))

    return update


def run_spec(spec: RunSpec, progress: Progress | None = None) -> dict[str, Any]:
    """Run one backtest and return its result document (results.py), not yet saved."""
    if spec.data not in DATA_KINDS:
        raise ConfigError(f"--data must be one of {', '.join(DATA_KINDS)}")
    cls = load_strategy(spec.strategy_path)
    params = convert_params(cls, spec.params)
    store = None if spec.data == "sim" else HistoryStore(spec.data_dir)
    instruments = instruments_for(spec, store)
    strategy = cls(**params)
    use_bars = store is not None and (bars_only(cls) or spec.vector)
    candles: list[Candle] = []
    if spec.data == "sim":
        start = spec.start if spec.start is not None else SIM_START
        end = spec.end if spec.end is not None else start + 3600 * NS
    elif use_bars:
        assert store is not None and cls.bar_interval is not None
        first, last = spec.start or 0, spec.end or FAR_FUTURE
        candles = list(stored_bars(store, instruments, cls.bar_interval, first, last))
        if not candles:
            raise ConfigError(f"no {cls.bar_interval} bars in that range")
        start = spec.start or min(c.start_ns for c in candles)
        end = spec.end or max(c.end_ns for c in candles)
    else:
        assert store is not None
        first, last = store.extent(instruments, spec.start or 0, spec.end or FAR_FUTURE)
        if last < first:
            raise ConfigError("no recorded events in that range")
        start, end = spec.start or first, spec.end or last + 1
    if end <= start:
        raise ConfigError("--to must be after --from")
    bar_floor = INTERVALS[cls.bar_interval] if cls.bar_interval else NS
    config = spec.config
    if config.curve_ns == BacktestConfig().curve_ns:
        config = BacktestConfig(**{**vars(config), "curve_ns": curve_step(end - start, bar_floor)})
    began = time.perf_counter()
    if spec.vector:
        vector = getattr(strategy, "vector", None)
        if vector is None or not use_bars or len(instruments) != 1:
            raise ConfigError(
                "--vector needs a strategy with vector(bars) and bar_interval, recorded or "
                "imported data and one instrument"
            )
        bars = Bars.from_candles(candles)
        run: Any = run_vector(vector(bars), bars, config)
    elif use_bars:
        run = Backtest(strategy, instruments, config).run(candles)
    else:
        if spec.data == "sim":
            sim = SimConfig(seed=spec.seed, events_per_second=spec.rate)
            events: Iterable[Any] = sim_events([i.symbol for i in instruments], start, end, sim)
            feeds: list[Feed] = [
                EventsFeed("sim", instruments, _progress(events, start, end, progress))
            ]
        else:
            assert store is not None
            events = stored_events(store, instruments, start, end)
            per_venue = None if progress is None else _per_part(progress)
            feeds = stored_feeds_for(store, instruments, start, end, per_venue)
        if spec.direct:
            backtest = Backtest(strategy, instruments, config)
            run = backtest.run(_progress(events, start, end, progress))
        else:
            run = run_on_runtime(Settings(), strategy, instruments, config, feeds)
    elapsed = time.perf_counter() - began
    source = spec.strategy_path.read_bytes()
    return build_result(
        run,
        config,
        {
            "name": cls.__name__,
            "file": spec.strategy_path.name,
            "sha256": hashlib.sha256(source).hexdigest(),
            "params": {**cls.params, **params},
        },
        {
            "kind": spec.data,
            "path": "vector"
            if spec.vector
            else "bars"
            if use_bars
            else "direct"
            if spec.direct
            else "runtime",
            "instruments": [f"{i.venue}:{i.symbol}" for i in instruments],
            "from_ns": start,
            "to_ns": end,
            **({"seed": spec.seed, "rate": spec.rate} if spec.data == "sim" else {}),
        },
        elapsed,
    )
