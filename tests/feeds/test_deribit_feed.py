"""Deribit feed: a venue unreachable at start-up is retried in the run loop while the rest serve."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import httpx
import pytest

from helpers import engine_of, make_runtime, serve_in_loop
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.errors import ConfigError
from quantsaas.fakes.deribit import DeribitFakeConfig, FakeDeribit
from quantsaas.feeds.base import FeedState
from quantsaas.feeds.deribit.feed import DeribitFeed
from quantsaas.feeds.registry import build_feeds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def test_serve_builds_a_deribit_feed_that_cannot_reach_the_chain_yet() -> None:
    settings = Settings(
        feeds=("sim", "deribit"), deribit_rest_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(ConfigError, match="cannot fetch"):
        build_feeds(settings)  # built directly, an unreachable venue is still an error
    sim, deribit = build_feeds(settings, defer_unreachable=True)
    assert isinstance(deribit, DeribitFeed) and deribit.instruments == ()
    assert deribit.chain is not None and sim.instruments
    assert (sim.stats.stale_after_s, deribit.stats.stale_after_s) == (10.0, 120.0)
    named = Settings(feeds=("deribit",), deribit_instruments=("BTC-PERPETUAL",))
    with pytest.raises(ConfigError, match="not an option name"):
        build_feeds(named, defer_unreachable=True)  # a bad name is never deferred


@pytest.mark.asyncio
async def test_the_chain_is_retried_until_the_venue_answers_while_the_rest_serve() -> None:
    port = free_port()
    settings = Settings(
        feeds=("sim", "deribit"),
        symbols=("BTC/USD",),
        deribit_rest_url=f"http://127.0.0.1:{port}",
        deribit_ws_url=f"ws://127.0.0.1:{port}",
        deribit_currencies=("BTC",),
        deribit_max_options=4,
        feed_backoff_initial_s=0.05,
        feed_backoff_cap_s=0.2,
    )
    sim, deribit = build_feeds(settings, defer_unreachable=True)
    built = make_runtime([sim, deribit], settings)
    engine = engine_of(built)
    app = create_app(built)
    fake = FakeDeribit(DeribitFakeConfig(currencies=("BTC",), rate=20))
    try:
        async with (
            serve_in_loop(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http,
        ):
            await wait_until(lambda: deribit.stats.last_error is not None, 5, "first failure")
            await wait_until(lambda: sim.stats.state is FeedState.LIVE, 5, "sim live")
            body = (await http.get("/health")).json()
            assert body["status"] == "degraded"
            feeds = {feed["venue"]: feed for feed in body["feeds"]}
            assert feeds["sim"]["live"] is True and feeds["deribit"]["live"] is False
            assert "cannot fetch the option chain" in feeds["deribit"]["last_error"]
            assert feeds["deribit"]["state"] in ("disconnected", "starting")
            await fake.start(port=port)  # the venue comes back: chain, books, tickers
            await wait_until(lambda: len(deribit.instruments) == 4, 10, "chain fetched")
            assert all(inst.key in engine.books for inst in deribit.instruments)
            await wait_until(
                lambda: all(engine.books[i.key].valid for i in deribit.instruments), 10, "books"
            )
            listed = (await http.get("/api/v1/instruments")).json()["data"]
            assert sum(1 for row in listed if row["venue"] == "deribit") == 4
    finally:
        await fake.stop()
