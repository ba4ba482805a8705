"""Feed registry: `build_feeds` turns the configured feed names into Feed objects.

Each factory imports its venue's modules itself, so a process loads the feeds it runs and no
others (the simulator alone needs no WebSocket client and no httpx).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.feeds.base import Feed

if TYPE_CHECKING:
    from quantsaas.feeds.transport import TransportConfig

log = logging.getLogger(__name__)


def _simulator(settings: Settings) -> Feed:
    from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments

    config = SimConfig(
        seed=settings.sim_seed,
        events_per_second=settings.sim_rate,
        annual_vol=settings.sim_vol,
    )
    return SimulatorFeed(select_instruments(settings.symbols), config)


def _transport(settings: Settings) -> TransportConfig:
    from quantsaas.feeds.transport import Backoff, TransportConfig, venue_ssl_context

    backoff = Backoff(initial_s=settings.feed_backoff_initial_s, cap_s=settings.feed_backoff_cap_s)
    liveness = settings.feed_liveness_s
    return TransportConfig(
        stall_s=settings.feed_stall_s,
        liveness_s=liveness,
        probe_s=min(2.0, liveness / 2),
        backoff=backoff,
        ssl=venue_ssl_context(settings.ca_file),
    )


def _binance(settings: Settings) -> Feed:
    from quantsaas.feeds.binance.feed import BinanceFeed
    from quantsaas.feeds.instruments import binance_instruments

    return BinanceFeed(
        binance_instruments(settings.binance_symbols),
        ws_url=settings.binance_ws_url,
        rest_url=settings.binance_rest_url,
        config=_transport(settings),
        depth_limit=settings.binance_depth_limit,
    )


def _coinbase(settings: Settings) -> Feed:
    from quantsaas.feeds.coinbase.feed import CoinbaseFeed
    from quantsaas.feeds.instruments import coinbase_instruments

    return CoinbaseFeed(
        coinbase_instruments(settings.coinbase_symbols),
        url=settings.coinbase_ws_url,
        api=settings.coinbase_api,
        config=_transport(settings),
    )


def _kraken(settings: Settings) -> Feed:
    from quantsaas.feeds.kraken.feed import KrakenFeed
    from quantsaas.feeds.kraken.parse import kraken_instruments

    return KrakenFeed(
        kraken_instruments(settings.kraken_symbols),
        url=settings.kraken_ws_url,
        config=_transport(settings),
        depth=settings.kraken_depth,
        verify_checksum=settings.kraken_verify_checksum,
    )


def _deribit(settings: Settings, defer: bool = False) -> Feed:
    from quantsaas.feeds.deribit.feed import ChainSource, DeribitFeed, option_chain

    chain: ChainSource | None = None
    try:
        instruments = option_chain(settings)
    except ConfigError as exc:
        if not defer or settings.deribit_instruments:
            raise
        log.warning("%s; fetching it again in the feed's run loop", exc)
        instruments, chain = (), ChainSource.of(settings)
    return DeribitFeed(
        instruments,
        url=settings.deribit_ws_url,
        config=_transport(settings),
        heartbeat_s=settings.deribit_heartbeat_s,
        currencies=settings.deribit_currencies,
        chain=chain,
    )


def _deribit_deferred(settings: Settings) -> Feed:
    return _deribit(settings, defer=True)


FEED_FACTORIES: dict[str, Callable[[Settings], Feed]] = {
    "sim": _simulator,
    "binance": _binance,
    "coinbase": _coinbase,
    "kraken": _kraken,
    "deribit": _deribit,
}


STALE_SETTINGS = {
    "sim": "sim_stale_s",
    "binance": "binance_stale_s",
    "coinbase": "coinbase_stale_s",
    "kraken": "kraken_stale_s",
    "deribit": "deribit_stale_s",
}
"""Feed name -> the setting holding its venue's data-age bound (a book older is stale)."""


DEFERRED_FACTORIES: dict[str, Callable[[Settings], Feed]] = {"deribit": _deribit_deferred}
"""Feeds that can be built while their venue is unreachable (they fetch what they need in
their run loop): what `serve` uses, so one venue down does not stop the others."""


def build_feeds(settings: Settings, defer_unreachable: bool = False) -> list[Feed]:
    """Feeds for the configured names. A venue unreachable while its feed is built (the Deribit
    option chain) is a ConfigError, unless `defer_unreachable` (serve): then that feed retries
    in its run loop with backoff while the rest serve."""
    if not settings.feeds:
        raise ConfigError("at least one feed is required")
    unknown = [name for name in settings.feeds if name not in FEED_FACTORIES]
    if unknown:
        known = ", ".join(sorted(FEED_FACTORIES))
        raise ConfigError(f"unknown feed(s) {', '.join(unknown)}; known feeds: {known}")
    feeds = []
    for name in dict.fromkeys(settings.feeds):
        factory = FEED_FACTORIES[name]
        if defer_unreachable:
            factory = DEFERRED_FACTORIES.get(name, factory)
        feed = factory(settings)
        feed.stats.stale_after_s = float(getattr(settings, STALE_SETTINGS[name]))
        feeds.append(feed)
    return feeds
