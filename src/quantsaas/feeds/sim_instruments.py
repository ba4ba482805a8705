"""Static parameters of the market simulator: its instruments and its configuration.

Each simulated instrument carries a start price and a mean limit-order size (raw integers on the
instrument's grids); `SimConfig` holds everything else. The model itself is described in
`quantsaas.feeds.simulator`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from quantsaas.errors import ConfigError, UnknownInstrument, quote
from quantsaas.model import Instrument, symbol_from_text

SIM_VENUE = "sim"

MIN_RATE = 1.0
MAX_RATE = 100_000.0
MAX_VOL = 20.0


@dataclass(frozen=True, slots=True)
class SimSpec:
    """A simulated instrument and the market parameters the simulator needs for it."""

    instrument: Instrument
    start_price: int
    """Initial latent fair value, raw at `price_scale`."""
    order_size: int
    """Mean limit-order size, raw at `size_scale` (a multiple of the lot size)."""


def _spec(
    base: str, price_scale: int, tick: int, size_scale: int, lot: int, start: str, order: str
) -> SimSpec:
    instrument = Instrument(
        venue=SIM_VENUE,
        base=base,
        quote="USD",
        native_symbol=f"{base}-USD",
        price_scale=price_scale,
        size_scale=size_scale,
        tick_size=tick,
        lot_size=lot,
    )
    return SimSpec(instrument, instrument.price(start), instrument.size(order))


_SPECS: tuple[SimSpec, ...] = (
    _spec("BTC", 2, 10, 8, 1, "60000.00", "0.05"),
    _spec("ETH", 2, 1, 8, 1, "3000.00", "0.8"),
    _spec("SOL", 3, 10, 8, 10_000, "150.000", "15"),
    _spec("ADA", 6, 100, 1, 1, "0.450000", "2500"),
)
_BY_SYMBOL = {spec.instrument.symbol: spec for spec in _SPECS}


def default_instruments() -> tuple[Instrument, ...]:
    """Every simulated instrument: BTC/USD, ETH/USD, SOL/USD and ADA/USD."""
    return tuple(spec.instrument for spec in _SPECS)


def sim_spec(instrument: Instrument | str) -> SimSpec:
    """The simulator parameters of an instrument, given as an Instrument or any symbol spelling."""
    if isinstance(instrument, Instrument):
        spec = _BY_SYMBOL.get(instrument.symbol)
        if spec is None or spec.instrument != instrument:
            raise UnknownInstrument(f"{instrument.venue} {instrument.symbol} is not simulated")
        return spec
    symbol = symbol_from_text(instrument)
    found = _BY_SYMBOL.get(symbol)
    if found is None:
        known = ", ".join(_BY_SYMBOL)
        raise UnknownInstrument(f"the simulator has no symbol {quote(instrument)}; known: {known}")
    return found


def sim_instrument(symbol: str) -> Instrument:
    """The simulated instrument for `BTC/USD`, `BTC-USD` or `btc-usd`."""
    return sim_spec(symbol).instrument


def select_instruments(symbols: str | Iterable[str] | None = None) -> tuple[Instrument, ...]:
    """Instruments for a CLI value such as `BTC/USD,ETH/USD`; empty or None selects all."""
    if symbols is None:
        return default_instruments()
    parts = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    chosen: list[Instrument] = []
    for part in parts:
        if part.strip():
            instrument = sim_instrument(part)
            if instrument not in chosen:
                chosen.append(instrument)
    return tuple(chosen) if chosen else default_instruments()


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Settings of the simulator; invalid values raise ConfigError."""

    seed: int = 7
    events_per_second: float = 50.0
    """Order-flow events (limit orders, cancels, market orders) per simulated second and symbol;
    each one is published as exactly one BookDelta, plus one Trade per level it executes at."""
    annual_vol: float = 0.6
    """Annualised volatility of the latent fair value, in simulated time."""
    symbol_vols: tuple[tuple[str, float], ...] = ()
    """Per-symbol overrides of `annual_vol`, e.g. `(("ADA/USD", 0.9),)`."""
    ticker_interval_s: float = 1.0
    depth_levels: int = 40
    """Price levels per side over which limit orders are placed around the fair value."""
    wakeup_s: float = 0.01
    """How long the real-time feed sleeps between batches."""

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"simulator seed must be an integer, not {self.seed!r}")
        rate = self.events_per_second
        if not _finite(rate) or not MIN_RATE <= rate <= MAX_RATE:
            raise ConfigError(
                f"simulator events_per_second must be within {MIN_RATE:g}..{MAX_RATE:g}, "
                f"not {rate!r}"
            )
        _check_vol("annual_vol", self.annual_vol)
        for symbol, vol in self.symbol_vols:
            if symbol not in _BY_SYMBOL:
                raise ConfigError(f"volatility override for unknown symbol {quote(symbol)}")
            _check_vol(f"annual_vol of {symbol}", vol)
        if not _finite(self.ticker_interval_s) or not 0.01 <= self.ticker_interval_s <= 3600:
            raise ConfigError(
                f"ticker_interval_s must be within 0.01..3600, not {self.ticker_interval_s!r}"
            )
        if isinstance(self.depth_levels, bool) or not 10 <= self.depth_levels <= 500:
            raise ConfigError(f"depth_levels must be within 10..500, not {self.depth_levels!r}")
        if not _finite(self.wakeup_s) or not 0 < self.wakeup_s <= 1:
            raise ConfigError(f"wakeup_s must be within (0, 1], not {self.wakeup_s!r}")

    def vol_for(self, symbol: str) -> float:
        for name, vol in self.symbol_vols:
            if name == symbol:
                return vol
        return self.annual_vol


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_vol(name: str, vol: float) -> None:
    if not _finite(vol) or not 0 < vol <= MAX_VOL:
        raise ConfigError(f"{name} must be within (0, {MAX_VOL:g}], not {vol!r}")
