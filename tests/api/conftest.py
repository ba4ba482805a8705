from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from fastapi import FastAPI

from helpers import ScriptedFeed, make_instrument, serve_in_loop
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.model import Instrument


@dataclass
class Service:
    address: str
    engine: Engine
    feed: ScriptedFeed
    btc: Instrument
    eth: Instrument
    app: FastAPI

    @property
    def http(self) -> str:
        return f"http://{self.address}"

    @property
    def ws(self) -> str:
        return f"ws://{self.address}/ws"


@pytest_asyncio.fixture
async def service() -> AsyncIterator[Service]:
    btc, eth = make_instrument(), make_instrument("ETH")
    feed = ScriptedFeed([btc, eth])
    engine = Engine([feed])
    settings = Settings(ws_queue_size=64, ws_max_lag_s=0.2, ws_max_bad_messages=5)
    app = create_app(settings, engine)
    async with serve_in_loop(app, ws_max_size=settings.ws_max_message_bytes) as address:
        yield Service(address, engine, feed, btc, eth, app)
