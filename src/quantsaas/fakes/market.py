"""The market behind the fake exchanges: one simulator per native symbol, advanced in ticks.

A native symbol maps to the simulated instrument of its base (`BTCUSDT`, `BTC-USD` -> `BTC/USD`).
Each `advance` returns, per symbol, the changed levels (latest absolute size per price) and the
trades of that slice of time, with prices rendered as venue decimal text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from quantsaas.errors import ConfigError, UnknownInstrument
from quantsaas.fakes.catalog import Listing, listing
from quantsaas.feeds.instruments import split_symbol
from quantsaas.feeds.sim_book import NS, MarketSimulator
from quantsaas.feeds.sim_instruments import SimConfig, sim_spec
from quantsaas.model import BookDelta, Instrument, Level, Trade, format_fixed

FAKE_SCALE = 8
"""Decimals the fakes write, like Binance's fixed 8."""


@dataclass
class SymbolTick:
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    changes: int = 0
    """Number of book events merged into `bids`/`asks`."""


class SimMarket:
    """Simulated books and trades for a set of native symbols."""

    def __init__(self, natives: list[str], rate: float = 50.0, seed: int = 7) -> None:
        config = SimConfig(seed=seed, events_per_second=rate)
        self.sims: dict[str, MarketSimulator] = {}
        for native in natives:
            base, _ = split_symbol(native)
            try:
                spec = sim_spec(f"{base}/USD")
            except UnknownInstrument:
                raise ConfigError(
                    f"the simulator has no {base}: simulated products are BTC, ETH, SOL and "
                    f"ADA against any quote; replay a recording of {native[:40]!r} with --replay"
                ) from None
            self.sims[native] = MarketSimulator(spec, config)

    def listing(self, native: str) -> Listing:
        """The REST listing of a simulated product (its tick and lot from the simulator)."""
        inst = self.sims[native].instrument
        return listing(native, inst.price_scale, inst.size_scale)

    def instrument(self, native: str) -> Instrument:
        return self.sims[native].instrument

    def text(self, native: str, raw: int, price: bool = True) -> str:
        inst = self.sims[native].instrument
        scale = inst.price_scale if price else inst.size_scale
        return format_fixed(raw * 10 ** (FAKE_SCALE - scale), FAKE_SCALE)

    def levels_text(self, native: str, levels: tuple[Level, ...]) -> list[list[str]]:
        return [[self.text(native, p), self.text(native, s, price=False)] for p, s in levels]

    def book(self, native: str) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self.sims[native].book()

    def advance(self, seconds: float) -> dict[str, SymbolTick]:
        out: dict[str, SymbolTick] = {}
        for native, sim in self.sims.items():
            tick = SymbolTick()
            for event in sim.run_until(sim.sim_ns + round(seconds * NS)):
                if isinstance(event, BookDelta):
                    tick.changes += 1
                    tick.bids.update(event.bids)
                    tick.asks.update(event.asks)
                elif isinstance(event, Trade):
                    tick.trades.append(event)
            out[native] = tick
        return out
