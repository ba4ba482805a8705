"""The pipeline's cost per event: engine -> bus -> every in-process consumer, against the engine
publishing to a bus with no consumer, in the same process (issue 14: the composition root must
not cost speed).

The same pre-generated simulator stream (BTC/USD + ETH/USD, trades and book deltas) goes through
`Engine.on_event` twice, interleaved over rounds: `bare` (the engine and its bus only) and `full`
(analytics, the consolidated market and the recorder's hot path, as `serve` wires them). The
printed figure is events/s of each and full/bare, best of the rounds (CPU time). The script also
runs on a checkout from before the composition root (engine listeners), so the two can be
compared: `PYTHONPATH=/old/checkout/src python bench/bench_pipeline.py`.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.model import MarketEvent


def stream(seconds: float) -> list[MarketEvent]:
    feed = SimulatorFeed(select_instruments("BTC/USD,ETH/USD"), SimConfig(events_per_second=5000))
    sims = [feed.simulator(instrument) for instrument in feed.instruments]
    events: list[MarketEvent] = [sim.snapshot() for sim in sims]
    for step in range(1, round(seconds / 0.05) + 1):
        for sim in sims:
            events.extend(sim.run_until(round(step * 0.05 * 1e9)))
    return events


def build(full: bool, root: Path) -> Any:
    """The engine's `on_event`, wired as the checkout in use wires it."""
    feed = SimulatorFeed(select_instruments("BTC/USD,ETH/USD"))
    try:
        from quantsaas import runtime
        from quantsaas.bus import Bus
        from quantsaas.config import Settings
        from quantsaas.engine import Engine
    except ImportError:  # before the composition root: listeners on the engine
        from quantsaas.analytics.live import install_analytics  # type: ignore[attr-defined]
        from quantsaas.book.consolidated import QuoteEquivalence
        from quantsaas.book.consolidated_live import (  # type: ignore[attr-defined]
            ConsolidatedConfig,
            install_consolidated,
        )
        from quantsaas.engine import Engine
        from quantsaas.store.recorder import Recorder, RecorderConfig

        engine: Any = Engine([feed])  # type: ignore[call-arg]
        if full:
            install_analytics(engine)
            install_consolidated(engine, ConsolidatedConfig(QuoteEquivalence()))
            Recorder(RecorderConfig(root)).attach(engine)  # type: ignore[attr-defined]
        return engine.on_event
    if not full:
        bus = Bus()
        return Engine([feed], bus.publish).on_event
    settings = Settings(data_dir=root, web_dist=None)
    built = runtime.build(settings, feeds=[feed], record=True)
    assert built.engine is not None
    return built.engine.on_event


def run(events: list[MarketEvent], full: bool, root: Path) -> float:
    on_event = build(full, root)
    gc.collect()
    started = time.process_time()
    for event in events:
        on_event(event)
    return len(events) / (time.process_time() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="simulated seconds")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    events = stream(args.seconds)
    best = {False: 0.0, True: 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for full in (False, True):
                best[full] = max(best[full], run(events, full, Path(tmp) / f"{index}-{full}"))
    print(f"{len(events):,} events, best of {args.rounds} rounds (CPU time)")
    print(f"  bare (engine + bus)                      {best[False]:>12,.0f} events/s")
    print(f"  full (+ analytics, consolidated, recorder) {best[True]:>10,.0f} events/s")
    print(f"  full / bare                              {best[True] / best[False]:>12.3f}")


if __name__ == "__main__":
    main()
