"""Feed registry: `build_feeds` turns the configured feed names into Feed objects."""

from __future__ import annotations

from collections.abc import Callable

from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.feeds.base import Feed
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments


def _simulator(settings: Settings) -> Feed:
    config = SimConfig(
        seed=settings.sim_seed,
        events_per_second=settings.sim_rate,
        annual_vol=settings.sim_vol,
    )
    return SimulatorFeed(select_instruments(settings.symbols), config)


FEED_FACTORIES: dict[str, Callable[[Settings], Feed]] = {"sim": _simulator}


def build_feeds(settings: Settings) -> list[Feed]:
    if not settings.feeds:
        raise ConfigError("at least one feed is required")
    unknown = [name for name in settings.feeds if name not in FEED_FACTORIES]
    if unknown:
        known = ", ".join(sorted(FEED_FACTORIES))
        raise ConfigError(f"unknown feed(s) {', '.join(unknown)}; known feeds: {known}")
    return [FEED_FACTORIES[name](settings) for name in dict.fromkeys(settings.feeds)]
