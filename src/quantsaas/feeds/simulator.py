"""The simulated venue `sim`: a limit-order book driven by Poisson order flow.

Model (one `MarketSimulator` per instrument, in simulated time, in the spirit of Cont, Stoikov &
Talreja 2010). A latent fair value F follows a geometric Brownian motion with the configured
annualised volatility. Order-flow events arrive as a Poisson process of rate
`events_per_second`; each one is

* a limit order (weight 1): a buy or a sell with equal odds, placed d grid steps from F (a buy
  at floor(F) - d, a sell at ceil(F) + d) with P(d) proportional to (d + 1) ** -0.8 for
  d < `depth_levels`, so arrivals thin out with distance from the touch as a power law. An
  order priced through the opposite best quote is marketable: it takes every level up to its
  price (the stale quotes an arbitrageur would pick off), one trade per level at that level's
  price, then rests its own size. The book therefore never crosses or locks, and when F moves
  these orders drag the book after it;
* a market order (weight 0.12): it buys with probability 1 / (1 + exp(-(F - mid))) (F and mid
  in grid steps), so order flow leans toward the fair value, and walks up to 12 levels, one
  trade per level, never emptying a side;
* a cancellation (weight proportional to the resting size, i.e. a constant rate per resting
  order): a level is picked with probability proportional to its size and one order's worth is
  removed from it.

The cancel weight matches the inflow when about 3 orders rest on each of `depth_levels` levels
per side, which keeps depth stationary (a median of about 45 levels a side with the default 40;
the side behind a trend thickens). Order sizes are lognormal on the lot grid (sigma 0.8 around
`SimSpec.order_size`; market orders 1.5 x that, sigma 1.0). A side left with fewer than 10
levels is replenished behind its worst level; one at 2 x `depth_levels` levels drops its worst.
The mid lags F by a few events only, so the realised volatility of the mid at coarse sampling
(a minute and up) is the configured volatility.

Price grid: orders sit on a grid of `MarketSimulator.unit` raw price, the largest 1-2-5 multiple
of the tick not above half the typical move of F between two events (the tick itself for
coarse-tick or fast markets). The spread comes out at one to two moves of F per event, as in
real markets where spread and volatility per event are proportional (Wyart et al. 2008): with
the defaults (50 events/s, 60% vol) BTC/USD has a median spread of 3 steps of its 0.2 USD grid,
at 10,000 events/s mostly one 0.1 USD tick; SOL and ADA are mostly one tick wide.

Each event is published as its trades (aggressor side, price, size), then one BookDelta with the
changed levels at their new absolute sizes; a Ticker comes every `ticker_interval_s` with the
top of book, last price and rolling 24 h volume. Snapshots and deltas share a sequence that
rises by one per book message. Each instrument draws from its own `random.Random` seeded with
(seed, symbol): a fixed seed gives a symbol the same stream whatever else is simulated.
`SimulatorFeed` replays every instrument in real time, simulated time 0 being when `run` starts.

Parameters (`SimConfig`): `seed` (7); `events_per_second` per symbol (50, within 1..100,000);
`annual_vol` (0.6) and per-symbol `symbol_vols`; `ticker_interval_s` (1.0); `depth_levels`
(40); `wakeup_s` (0.01), the real-time feed's sleep between batches. Instruments and their start
prices, tick and lot sizes and mean order sizes are in `quantsaas.feeds.sim_instruments`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from quantsaas.errors import UnknownInstrument
from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.feeds.sim_book import NS, MarketSimulator, grid_ticks, stream_seed
from quantsaas.feeds.sim_instruments import (
    SIM_VENUE,
    SimConfig,
    SimSpec,
    default_instruments,
    select_instruments,
    sim_instrument,
    sim_spec,
)
from quantsaas.feeds.sim_options import OptionChainSim, option_chains
from quantsaas.model import BookDelta, BookSnapshot, Instrument, MarketEvent, Trade, now_ns

__all__ = [
    "SIM_VENUE",
    "MarketSimulator",
    "SimConfig",
    "SimSpec",
    "SimulatorFeed",
    "default_instruments",
    "grid_ticks",
    "select_instruments",
    "sim_instrument",
    "sim_spec",
    "stream_seed",
]

log = logging.getLogger(__name__)

MAX_BATCH_NS = NS // 4
"""Simulated time emitted per instrument and wake-up at most; a late feed catches up in slices."""


def _wire_size(event: MarketEvent) -> int:
    """Rough size of the event as a venue would send it, for the byte counters."""
    if isinstance(event, BookDelta | BookSnapshot):
        return 64 + 32 * (len(event.bids) + len(event.asks))
    return 96 if isinstance(event, Trade) else 128


class SimulatorFeed(Feed):
    """All simulated instruments replayed in real time; simulated time 0 is when `run` starts."""

    venue = SIM_VENUE

    def __init__(
        self, instruments: Sequence[Instrument] | None = None, config: SimConfig | None = None
    ) -> None:
        super().__init__(default_instruments() if instruments is None else instruments)
        self.config = config or SimConfig()
        self._sims = {
            instrument.key: MarketSimulator(sim_spec(instrument), self.config)
            for instrument in self.instruments
        }
        self._pending: set[tuple[str, str]] = set()
        vols = {i.symbol: self.config.vol_for(i.symbol) for i in self.instruments}
        self.option_chains: list[OptionChainSim] = option_chains(self.instruments, vols, now_ns())
        """Deribit-style option chains on BTC/USD and ETH/USD (`sim_options`), one OptionTicker
        per option and second."""

    def simulator(self, instrument: Instrument) -> MarketSimulator:
        """The simulator behind one instrument (its true book)."""
        try:
            return self._sims[instrument.key]
        except KeyError:
            raise UnknownInstrument(
                f"{instrument.venue} {instrument.symbol} not in this feed"
            ) from None

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self.simulator(instrument)
        log.info("resync of sim %s requested: %s", instrument.symbol, reason)
        self._pending.add(instrument.key)

    async def run(self, sink: EventSink) -> None:
        """Snapshots first, then every event whose simulated time has come, batch per wake-up.

        Simulated time is paced by the monotonic clock (wall-clock jumps do not make it race)
        and stamped on the wall clock: `ts_event = wall time at start + simulated time`.
        """
        stats = self.stats
        stats.state = FeedState.STARTING
        sims = list(self._sims.values())
        wall, paced = now_ns(), time.monotonic_ns()
        origins = [paced - sim.sim_ns for sim in sims]
        for sim in sims:
            sim.epoch_ns = wall - sim.sim_ns
        try:
            for sim in sims:
                self._pending.discard(sim.instrument.key)
                self._emit(sink, sim.snapshot(wall), wall)
            stats.state = FeedState.LIVE
            wakeup_ns = round(self.config.wakeup_s * NS)
            next_options = wall
            while True:
                paced, wall = time.monotonic_ns(), now_ns()
                behind = False
                for sim, origin in zip(sims, origins, strict=True):
                    behind = self._emit_due(sim, sink, paced - origin, wall) or behind
                if wall >= next_options:
                    next_options = wall + NS
                    self._emit_options(sink, wall)
                spent = time.monotonic_ns() - paced
                await asyncio.sleep(0 if behind else max(0, wakeup_ns - spent) / NS)
        except asyncio.CancelledError:
            stats.state = FeedState.STOPPED
            raise

    def _emit_due(self, sim: MarketSimulator, sink: EventSink, target: int, now: int) -> bool:
        """Emit one instrument's events up to simulated `target`; True if a batch was not enough."""
        key = sim.instrument.key
        pending = self._pending
        if key in pending:
            self._resync(sim, sink, now)
        limit = sim.sim_ns + MAX_BATCH_NS
        stats = self.stats
        for event in sim.run_until(min(target, limit), now):
            if type(event) is BookDelta and key in pending:
                continue  # superseded by the snapshot sent after this batch
            sink(event)
            stats.record_message(_wire_size(event), now)
            if type(event) is BookDelta:
                stats.book_data_ns[sim.instrument.symbol] = now
        if key in pending:
            self._resync(sim, sink, now)
        return target > limit

    def _emit_options(self, sink: EventSink, now: int) -> None:
        for chain in self.option_chains:
            mid = self._sims[chain.underlying.key].mid
            for ticker in chain.tickers(mid, now):
                self._emit(sink, ticker, now)

    def _resync(self, sim: MarketSimulator, sink: EventSink, now: int) -> None:
        self._pending.discard(sim.instrument.key)
        self.stats.resyncs += 1
        self._emit(sink, sim.snapshot(now), now)

    def _emit(self, sink: EventSink, event: MarketEvent, now: int) -> None:
        sink(event)
        self.stats.record_message(_wire_size(event), now)
        if type(event) is BookSnapshot:
            self.stats.book_data_ns[event.instrument.symbol] = now
