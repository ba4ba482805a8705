"""The shared transport: backoff bounds, unreachable venues, raw-frame tap, configuration."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from quantsaas.cli import parser, settings_from
from quantsaas.config import Settings
from quantsaas.fakes.binance import BinanceFakeConfig, FakeBinance
from quantsaas.feeds.base import BooksStale
from quantsaas.feeds.binance.feed import BinanceFeed
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.instruments import binance_instruments
from quantsaas.feeds.registry import build_feeds
from quantsaas.feeds.simulator import SimulatorFeed
from quantsaas.feeds.transport import Backoff, TransportConfig
from quantsaas.model import MarketEvent


def test_backoff_is_exponential_capped_and_jittered() -> None:
    backoff = Backoff(initial_s=0.5, cap_s=30.0, factor=2.0, jitter=0.5)
    assert backoff.delay(0, lambda: 0.0) == 0.5
    assert backoff.delay(3, lambda: 0.0) == 4.0
    assert backoff.delay(100, lambda: 0.0) == 30.0
    assert backoff.delay(100, lambda: 1.0) == 15.0
    delays = [backoff.delay(10) for _ in range(200)]
    assert all(15.0 <= d <= 30.0 for d in delays) and len(set(delays)) > 100


@pytest.mark.asyncio
async def test_unreachable_venue_is_reported_and_retried() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TransportConfig(backoff=Backoff(initial_s=0.01, cap_s=0.05))
    feed = BinanceFeed(binance_instruments(["BTC/USDT"]), f"ws://127.0.0.1:{port}", config=config)
    task = asyncio.create_task(feed.run(lambda event: None))
    try:
        deadline = time.monotonic() + 5
        while feed.stats.reconnects < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert feed.stats.reconnects >= 3
        assert feed.stats.state.value in ("disconnected", "starting")
        assert "cannot connect" in (feed.stats.last_error or "")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert feed.stats.state.value == "stopped"


@pytest.mark.asyncio
async def test_raw_tap_sees_every_frame_with_a_receive_time_before_parsing() -> None:
    fake = FakeBinance(BinanceFakeConfig(symbols=("BTCUSDT",), rate=100, interval_s=0.05))
    port = await fake.start()
    feed = BinanceFeed(
        binance_instruments(["BTC/USDT"]), f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    )
    taps: list[tuple[str, str | bytes, int]] = []
    events: list[MarketEvent] = []
    feed.taps.append(lambda venue, raw, ts: taps.append((venue, raw, ts)))
    task = asyncio.create_task(
        feed.run(lambda e: None if isinstance(e, BooksStale) else events.append(e))
    )
    try:
        deadline = time.monotonic() + 5
        while len(taps) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
    assert len(taps) >= 20 and feed.stats.messages == len(taps)
    assert all(
        venue == "binance" and b'"stream"' in bytes(raw, "utf8")
        for venue, raw, _ in taps
        if isinstance(raw, str)
    )  # noqa: E501
    stamps = [ts for _, _, ts in taps]
    assert stamps == sorted(stamps)
    assert feed.stats.bytes == sum(len(raw) for _, raw, _ in taps)
    assert events and all(e.ts_recv in set(stamps) for e in events if e.ts_recv in set(stamps))


def test_registry_builds_every_venue_with_configured_endpoints() -> None:
    settings = Settings(
        feeds=("sim", "binance", "coinbase"),
        binance_ws_url="ws://127.0.0.1:9001",
        binance_rest_url="http://127.0.0.1:9001",
        coinbase_ws_url="ws://127.0.0.1:9002",
        coinbase_api="advanced",
        coinbase_symbols=("BTC/USD",),
        feed_stall_s=3.0,
    )
    sim, binance, coinbase = build_feeds(settings)
    assert isinstance(sim, SimulatorFeed)
    assert isinstance(binance, BinanceFeed) and binance.rest_url == "http://127.0.0.1:9001"
    assert binance.connect_url().startswith("ws://127.0.0.1:9001/stream?streams=btcusdt@depth")
    assert isinstance(coinbase, CoinbaseFeed) and coinbase.api == "advanced"
    assert coinbase.url == "ws://127.0.0.1:9002" and coinbase.config.stall_s == 3.0
    assert [inst.native_symbol for inst in coinbase.instruments] == ["BTC-USD"]


def test_cli_endpoint_options_reach_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTSAAS_BINANCE_SYMBOLS", "SOL/USDT")
    args = parser().parse_args(
        [
            "serve",
            "--feeds",
            "binance,coinbase",
            "--binance-ws",
            "ws://h:1",
            "--stall",
            "2",
            "--coinbase-api",
            "advanced",
        ]
    )
    settings = settings_from(args)
    assert settings.binance_ws_url == "ws://h:1" and settings.feed_stall_s == 2.0
    assert settings.binance_symbols == ("SOL/USDT",) and settings.coinbase_api == "advanced"


async def _run_briefly(fake: FakeBinance, seconds: float) -> BinanceFeed:
    port = await fake.start()
    feed = BinanceFeed(
        binance_instruments(["BTC/USDT"]),
        f"ws://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}",
        config=TransportConfig(ping_interval_s=None, backoff=Backoff(initial_s=0.05, cap_s=0.2)),
    )
    task = asyncio.create_task(feed.run(lambda event: None))
    try:
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()
    return feed


@pytest.mark.asyncio
async def test_server_pings_are_answered() -> None:
    """The fake pings every 0.1 s and drops a connection whose pong is 0.3 s late."""
    config = BinanceFakeConfig(symbols=("BTCUSDT",), ping_interval_s=0.1, ping_timeout_s=0.3)
    feed = await _run_briefly(FakeBinance(config), 1.5)
    assert feed.stats.reconnects == 0 and feed.stats.last_error is None
    assert feed.stats.state.value == "stopped"


@pytest.mark.asyncio
async def test_forced_disconnect_at_the_connection_lifetime_reconnects() -> None:
    """Binance closes every connection after 24 h; the fake does it after 0.5 s."""
    feed = await _run_briefly(FakeBinance(BinanceFakeConfig(lifetime_s=0.5)), 2.0)
    assert feed.stats.reconnects >= 2
    assert "lifetime" in (feed.stats.last_error or "")
    assert feed.stats.resyncs == 0 and feed.stats.gaps == 0
