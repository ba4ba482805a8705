"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from helpers import (
    POSTGRES_BIN,
    REDIS_SERVER,
    PostgresServer,
    RedisServer,
    ScriptedFeed,
    engine_of,
    make_instrument,
    make_runtime,
    serve_in_loop,
)
from quantsaas.accounts import passwords
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.api.app import create_app
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.model import Instrument

OPEN_ACCESS = {
    "QUANTSAAS_ANONYMOUS_TIER": "open",
    "QUANTSAAS_TIERS_FILE": str(Path(__file__).with_name("open_tiers.toml")),
    "QUANTSAAS_BOOTSTRAP_ADMIN": "false",
    "QUANTSAAS_SIM_WARM_START_HOURS": "0",
}
"""Tests that are not about access control run open: every Settings() and every `quantsaas serve`
subprocess reads these (the access tests pass closed settings explicitly). No warm start (seconds
of CPU per serve): its own tests turn it on."""

# Property tests draw the same examples on every run (a clean clone's CI sees what we saw);
# HYPOTHESIS_PROFILE=explore draws new ones to look for fresh counterexamples.
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_configure(config: pytest.Config) -> None:
    accounts = tempfile.mkdtemp(prefix="quantsaas-accounts-")
    config.stash[_ACCOUNTS_DIR] = accounts
    os.environ.update(OPEN_ACCESS)
    os.environ["QUANTSAAS_ACCOUNTS_URL"] = f"sqlite+aiosqlite:///{accounts}/accounts.db"


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash.get(_ACCOUNTS_DIR, ""), ignore_errors=True)


_ACCOUNTS_DIR = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL for the session (each test takes a fresh database from it)."""
    if POSTGRES_BIN is None:
        pytest.skip(
            "PostgreSQL missing: no /usr/lib/postgresql/*/bin (scripts/check.sh installs it)"
        )
    server = PostgresServer(POSTGRES_BIN)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with tiny costs instead of 64 MiB x 3 passes (~0.1 s per hash)."""
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    monkeypatch.setattr(passwords, "HASHER", cheap)


@pytest.fixture(params=["sqlite", "postgresql"])
def accounts_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh, empty accounts database: on SQLite, then on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('accounts')}/accounts.db"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest_asyncio.fixture
async def accounts(accounts_url: str, fast_passwords: None) -> AsyncIterator[Accounts]:
    """Accounts on `accounts_url` (both backends), packaged tiers, cheap password hashing."""
    opened = await Accounts.open(accounts_url, load_tiers(), poll_s=0.05)
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the session; tests keep apart by key prefix or unique names."""
    if not Path(REDIS_SERVER).exists():
        pytest.skip("redis-server missing (scripts/check.sh installs it)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


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
    settings = Settings(ws_queue_size=64, ws_max_lag_s=0.2, ws_max_bad_messages=5)
    built = make_runtime([feed], settings)
    engine = engine_of(built)
    app = create_app(built)
    async with serve_in_loop(app, ws_max_size=settings.ws_max_message_bytes) as address:
        yield Service(address, engine, feed, btc, eth, app)
