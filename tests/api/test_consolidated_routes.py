"""Consolidated markets through a real server: REST BBO/book/tape and the bbo, tape and
consolidated_book stream channels, with books from two venues at different scales."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets

from helpers import (
    ScriptedFeed,
    delta,
    engine_of,
    make_instrument,
    make_runtime,
    serve_in_loop,
    snapshot,
    trade,
)
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.model import Instrument

KRAKEN = make_instrument(venue="kraken", price_scale=10)
COINBASE = make_instrument(venue="coinbase", price_scale=2)
BINANCE_USDT = make_instrument(quote="USDT", venue="binance", price_scale=8)


@dataclass
class World:
    kraken: ScriptedFeed
    coinbase: ScriptedFeed
    engine: Engine
    http: httpx.AsyncClient
    ws_url: str


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    kraken = ScriptedFeed([KRAKEN], venue="kraken")
    coinbase = ScriptedFeed([COINBASE], venue="coinbase")
    binance = ScriptedFeed([BINANCE_USDT], venue="binance")
    built = make_runtime([kraken, coinbase, binance], Settings(web_dist=None))
    engine = engine_of(built)
    app = create_app(built)
    async with (
        serve_in_loop(app) as address,
        httpx.AsyncClient(base_url=f"http://{address}", timeout=5) as http,
    ):
        yield World(kraken, coinbase, engine, http, f"ws://{address}/ws")


def cents(inst: Instrument, value: int) -> int:
    factor: int = 10 ** (inst.price_scale - 2)
    return value * factor


async def receive(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 3))
        if message["type"] == kind:
            return message


async def settle(world: World, condition: Any) -> dict[str, Any]:
    for _ in range(100):
        body: dict[str, Any] = (await world.http.get("/api/v1/consolidated/bbo/BTC-USD")).json()
        if condition(body):
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"consolidated BBO never settled: {body}")


@pytest.mark.asyncio
async def test_bbo_crossed_market_and_the_streams(world: World) -> None:
    listing = (await world.http.get("/api/v1/consolidated")).json()
    assert [m["symbol"] for m in listing["data"]] == ["BTC/USD"]  # USDT is not merged by default
    assert listing["quote_equivalence"] == []
    async with websockets.connect(world.ws_url) as ws:
        await receive(ws, "info")
        await ws.send(
            json.dumps(
                {
                    "op": "subscribe",
                    "channels": ["bbo", "tape", "consolidated_book"],
                    "symbols": ["BTC/USD"],
                    "venues": ["consolidated"],
                }
            )
        )
        await receive(ws, "subscribed")
        world.kraken.push(
            snapshot(KRAKEN, [(cents(KRAKEN, 100_00), 5)], [(cents(KRAKEN, 101_00), 5)])
        )
        world.coinbase.push(
            snapshot(COINBASE, [(cents(COINBASE, 100_50), 7)], [(cents(COINBASE, 102_00), 7)])
        )
        body = await settle(world, lambda b: len(b["venues"]) == 2)
        assert body["bid"] == ["100.5000000000", "0.00000007", "coinbase"]
        assert body["ask_venue"] == "kraken" and body["spread"] == "0.5000000000"
        assert body["crossed"] is False
        message = await receive(ws, "bbo")
        assert message["venue"] == "consolidated" and message["symbol"] == "BTC/USD"
        world.coinbase.push(delta(COINBASE, [(cents(COINBASE, 101_20), 1)], [], 2))
        body = await settle(world, lambda b: b["crossed"])
        assert body["bid_venue"] == "coinbase" and body["spread"] == "-0.2000000000"
        while not (message := await receive(ws, "bbo"))["data"]["crossed"]:
            pass
        book = await receive(ws, "consolidated_book")
        assert {level[2] for level in book["data"]["bids"]} <= {"kraken", "coinbase"}
        world.kraken.push(trade(KRAKEN, cents(KRAKEN, 100_70), 2, "k1", 10))
        tape = await receive(ws, "tape")
        assert tape["data"]["venue"] == "kraken" and tape["data"]["price"] == "100.7000000000"
    rest = (await world.http.get("/api/v1/consolidated/book/BTC-USD", params={"depth": 2})).json()
    assert [level[2] for level in rest["bids"]] == ["coinbase", "coinbase"]
    assert (await world.http.get("/api/v1/consolidated/tape/BTC-USD")).json()["data"][0][
        "id"
    ] == "k1"
    # a venue going down removes its levels at once
    world.engine.books[COINBASE.key].invalidate()
    body = (await world.http.get("/api/v1/consolidated/bbo/BTC-USD")).json()
    assert body["venues"] == ["kraken"] and body["bid_venue"] == "kraken" and not body["crossed"]


@pytest.mark.asyncio
async def test_bad_symbols_get_problems(world: World) -> None:
    missing = await world.http.get("/api/v1/consolidated/bbo/DOGE-USD")
    assert missing.status_code == 404 and "BTC/USD" in missing.json()["detail"]
    assert (await world.http.get("/api/v1/consolidated/book/BTCUSD")).status_code == 404
    assert (await world.http.get("/api/v1/consolidated/book/BTC-USD?depth=0")).status_code == 422
    health = (await world.http.get("/health")).json()
    assert health["books"]["total"] == 4  # three venue books and the consolidated BTC/USD
