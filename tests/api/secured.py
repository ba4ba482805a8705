"""A closed service (no anonymous access) with small test tiers, for the auth and limit tests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from helpers import ScriptedFeed, engine_of, make_instrument, make_runtime, serve_in_loop
from quantsaas.accounts.service import Accounts
from quantsaas.api.app import create_app
from quantsaas.api.auth import Guard
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.model import Instrument

TEST_TIERS = """
[tiers.free]
symbols = ["BTC/USD", "ETH/USD"]
channels = ["trades", "ticker", "book", "candles", "history"]
book_interval_ms = 300
ws_connections = 1
ws_subscriptions = 4
ws_inbound_per_s = 5
history_days = 1
requests = 40
window_s = 60
api_keys = 2

[tiers.pro]
book_interval_ms = 0
ws_connections = 5
ws_subscriptions = 200
ws_inbound_per_s = 20
history_days = 90
requests = 1000
window_s = 60
api_keys = 10

[tiers.tiny]
book_interval_ms = 0
ws_connections = 5
ws_subscriptions = 20
ws_inbound_per_s = 20
history_days = 1
requests = 6
window_s = 60
api_keys = 5

[weights]
"/api/v1/book/{venue}/{symbol}" = 4
"""

PASSWORD = "correct horse battery staple"


@dataclass
class Secured:
    address: str
    app: FastAPI
    engine: Engine
    feed: ScriptedFeed
    instruments: dict[str, Instrument]
    settings: Settings

    @property
    def http(self) -> str:
        return f"http://{self.address}"

    @property
    def ws(self) -> str:
        return f"ws://{self.address}/ws"

    @property
    def guard(self) -> Guard:
        guard: Guard = self.app.state.guard
        return guard

    @property
    def accounts(self) -> Accounts:
        return self.guard.accounts

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.http, timeout=10, **kwargs)

    async def user_key(self, email: str, tier: str, admin: bool = False) -> str:
        user = await self.accounts.add_user(email, PASSWORD, tier=tier, is_admin=admin)
        text, _ = await self.accounts.create_key(user.id, "test")
        return text


@contextlib.asynccontextmanager
async def secured_service(
    tmp_path: Path, accounts_url: str, rate_limit_bus: str = "memory", **overrides: Any
) -> AsyncIterator[Secured]:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(TEST_TIERS)
    instruments = {base: make_instrument(base) for base in ("BTC", "ETH", "SOL")}
    feed = ScriptedFeed(list(instruments.values()))
    values: dict[str, Any] = {
        "web_dist": None,
        "anonymous_tier": None,
        "accounts_url": accounts_url,
        "tiers_file": tiers,
        "rate_limit_bus": rate_limit_bus,
        "bootstrap_admin": False,
        "login_attempts": 1000,
        "anonymous_requests": 100_000,  # one Redis serves the session: keep 127.0.0.1 unlimited
        "public_market_data_delay_s": 60.0,
        **overrides,
    }
    settings = Settings(**values)
    built = make_runtime([feed], settings)
    engine = engine_of(built)
    app = create_app(built)
    async with serve_in_loop(app, ws_max_size=settings.ws_max_message_bytes) as address:
        yield Secured(address, app, engine, feed, instruments, settings)
