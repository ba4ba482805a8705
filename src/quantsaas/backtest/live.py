"""A backtest on the live pipeline: a bus consumer in a runtime built by the composition root.

`run_on_runtime` builds the `backtest` role (runtime.py: the replay role's parts, event time,
plus the backtest as a consumer of the trades and book channels), with feeds that replay the
chosen data (a recorded or imported day through `StoredFeed`, exactly as `quantsaas replay`,
or the seeded simulator through `EventsFeed`). The engine validates every book event against
its books and publishes what it accepted; the backtest consumes exactly that, with the same
analytics beside it, so a backtest of a recorded day sees what a replay of that day publishes.

The venue side of the backtest keeps its own copy of each book, applied as each event comes
off the bus: an order that reaches the venue between two events must meet the book as it was
before the second one, and the engine's book has already moved on by the time its message is
delivered (reading it would be a one-event look-ahead). Same events, same validation: the two
copies are equal after every event (tests/backtest/test_live.py checks it).

The bus isolates consumers that raise (counted, the service goes on); a backtest must not go
on after its strategy failed, so the first error is kept and raised when the run ends.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from quantsaas import runtime
from quantsaas.backtest.engine import Backtest, BacktestConfig
from quantsaas.backtest.strategy import Strategy
from quantsaas.bus import Envelope
from quantsaas.config import Settings
from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.model import Instrument, MarketEvent
from quantsaas.store.history import HistoryStore
from quantsaas.store.replay import StoredFeed

YIELD_EVERY = 2000


class EventsFeed(Feed):
    """Any iterable of model events (the simulator's, in event time) as a feed, at full speed."""

    def __init__(self, venue: str, instruments: Sequence[Instrument], events: Iterable[Any]):
        super().__init__(instruments)
        self.venue = venue
        self.events = events
        self.finished = asyncio.Event()

    async def run(self, sink: EventSink) -> None:
        self.stats.state = FeedState.LIVE
        try:
            for index, event in enumerate(self.events):
                sink(event)
                if index % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            self.stats.state = FeedState.STOPPED
            self.finished.set()

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self.stats.record_error(f"book of {instrument.symbol} rejected: {reason}")


def stored_feeds_for(
    store: HistoryStore,
    instruments: Sequence[Instrument],
    start: int,
    end: int,
    progress: Callable[[object, int, int], None] | None = None,
) -> list[Feed]:
    """One StoredFeed per venue; `progress(part, done, total)` in seconds of recorded time."""
    by_venue: dict[str, list[Instrument]] = {}
    for instrument in instruments:
        by_venue.setdefault(instrument.venue, []).append(instrument)
    feeds: list[Feed] = []
    for venue, group in sorted(by_venue.items()):
        report = None
        if progress is not None:
            report = functools.partial(progress, venue)
        feeds.append(StoredFeed(store, group, start, end, progress=report))
    return feeds


def run_on_runtime(
    settings: Settings,
    strategy: Strategy,
    instruments: Sequence[Instrument],
    config: BacktestConfig,
    feeds: Sequence[Feed],
) -> Backtest:
    """Run `strategy` as the bus consumer of a `backtest` runtime fed by `feeds`."""
    holder: list[Backtest] = []
    failures: list[BaseException] = []

    def on_envelope(envelope: Envelope) -> None:
        if failures:
            return
        event: MarketEvent = envelope.event  # type: ignore[assignment]
        try:
            holder[0].on_event(event)
        except Exception as exc:
            failures.append(exc)
            raise

    built = runtime.build(settings, "backtest", feeds=feeds, backtest=on_envelope)
    assert built.engine is not None
    backtest = Backtest(strategy, instruments, config)
    holder.append(backtest)
    asyncio.run(_until_done(built, feeds))
    if failures:
        raise failures[0]
    backtest.finish()
    return backtest


async def _until_done(built: runtime.Runtime, feeds: Sequence[Feed]) -> None:
    task = asyncio.create_task(built.run())
    try:
        await asyncio.gather(*(feed.finished.wait() for feed in feeds))  # type: ignore[attr-defined]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
