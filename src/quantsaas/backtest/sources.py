"""Where a backtest's events come from, each yielding model events in event time.

* `sim_events`: the seeded market simulator (feeds/sim_book.py), so a run is reproducible:
  the same seed, symbols and span give the same events, hence the same fills.
* `stored_events`: recorded or imported history (store/), read window by window exactly as
  `quantsaas replay` reads it (StoredFeed.load: each book starts from its last snapshot at or
  before the start, then trades and book messages in recording order), so a backtest of a
  recorded day sees the events a replay of that day feeds the engine.
* `stored_bars`: candles of any interval from the store (built from trades, or imported
  klines), as `Candle` events stamped at their end.

Several venues or instruments merge by event time (`heapq.merge`, stable per source).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from quantsaas.analytics.candles import Candle
from quantsaas.errors import ConfigError
from quantsaas.feeds.sim_book import MarketSimulator
from quantsaas.feeds.sim_instruments import SimConfig, sim_spec
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent, Ticker, Trade
from quantsaas.store.history import HistoryStore
from quantsaas.store.replay import WINDOW_NS, StoredFeed

NS = 1_000_000_000
BookOrTrade = Trade | BookDelta | BookSnapshot


def _ts(event: MarketEvent) -> int:
    return event.ts_event


def _bar_end(bar: Candle) -> int:
    return bar.end_ns


def sim_instruments(symbols: Sequence[str]) -> list[Instrument]:
    return [sim_spec(symbol).instrument for symbol in symbols]


def sim_events(
    symbols: Sequence[str], start_ns: int, end_ns: int, config: SimConfig | None = None
) -> Iterator[BookOrTrade]:
    """Every simulated instrument's opening snapshot at `start_ns`, then its trades and book
    deltas until `end_ns` (tickers are left out: the backtest does not use them)."""
    if end_ns <= start_ns:
        raise ConfigError("the simulated span must be positive")
    chosen = config or SimConfig()
    streams = [
        _one_sim(MarketSimulator(sim_spec(symbol), chosen, epoch_ns=start_ns), end_ns - start_ns)
        for symbol in symbols
    ]
    yield from heapq.merge(*streams, key=_ts)


def _one_sim(sim: MarketSimulator, span_ns: int) -> Iterator[BookOrTrade]:
    yield sim.snapshot()
    step = NS
    t = 0
    while t < span_ns:
        t = min(span_ns, t + step)
        for event in sim.run_until(t):
            if type(event) is not Ticker:
                yield event  # type: ignore[misc]


def stored_events(
    store: HistoryStore, instruments: Sequence[Instrument], start: int, end: int
) -> Iterator[BookOrTrade]:
    """Recorded or imported trades and book messages of `instruments` in [start, end)."""
    by_venue: dict[str, list[Instrument]] = {}
    for instrument in instruments:
        by_venue.setdefault(instrument.venue, []).append(instrument)
    streams = [_one_venue(store, group, start, end) for _, group in sorted(by_venue.items())]
    yield from heapq.merge(*streams, key=_ts)


def _one_venue(
    store: HistoryStore, instruments: list[Instrument], start: int, end: int
) -> Iterator[BookOrTrade]:
    feed = StoredFeed(store, instruments, start, end)
    first, last = store.extent(instruments, start, end)
    for window in range(first, last + 1, WINDOW_NS):
        events = feed.load(window, min(window + WINDOW_NS, last + 1), window == first)
        yield from events  # type: ignore[misc]


def stored_bars(
    store: HistoryStore, instruments: Sequence[Instrument], interval: str, start: int, end: int
) -> Iterator[Candle]:
    """Closed candles of `interval` in [start, end), every instrument merged by end time."""
    streams = [iter(store.candles(i, interval, start, end, end)) for i in instruments]
    yield from heapq.merge(*streams, key=_bar_end)
