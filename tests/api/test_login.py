"""Login limits that hold under concurrency and do not lock the owner out. Runs on SQLite + the
memory limiter and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from helpers import PostgresServer
from quantsaas.accounts import passwords
from quantsaas.api.ratelimit import Quota
from secured import PASSWORD, Secured, secured_service

WRONG = "not the password at all"


@pytest_asyncio.fixture(params=["sqlite+memory", "postgres+redis"])
async def secured(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, fast_passwords: None
) -> AsyncIterator[Secured]:
    if request.param == "sqlite+memory":
        url, bus = f"sqlite+aiosqlite:///{tmp_path}/accounts.db", "memory"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url, bus = postgres.create_database(), redis_url
    async with secured_service(tmp_path, url, bus) as service:
        yield service


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password the service verifies (the real argon2 check still runs)."""
    seen: list[str] = []
    real: Callable[[str, str], tuple[bool, str | None]] = passwords.verify_password

    def counting(password: str, hashed: str) -> tuple[bool, str | None]:
        seen.append(password)
        return real(password, hashed)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return seen


def from_address(service: Secured, ip: str, **kwargs: Any) -> httpx.AsyncClient:
    """The running service's app, called in process as if from `ip`."""
    transport = httpx.ASGITransport(app=service.app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test", **kwargs)


async def login(service: Secured, ip: str, email: str, password: str) -> httpx.Response:
    async with from_address(service, ip) as http:
        return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


def unique_email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


@pytest.mark.asyncio
async def test_concurrent_guesses_from_many_addresses_are_verified_at_most_the_limit(
    secured: Secured, verified: list[str]
) -> None:
    email = unique_email()
    await secured.accounts.add_user(email, PASSWORD, tier="free")
    answers = await asyncio.gather(
        *(login(secured, f"198.51.100.{i}", email, WRONG) for i in range(100))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(401) <= 5 and statuses.count(429) >= 95, statuses
    assert verified.count(WRONG) <= 5


@pytest.mark.asyncio
async def test_one_ipv6_64_is_one_address_for_the_login_budget(secured: Secured) -> None:
    secured.guard.quotas["login"] = Quota("login", 10, 60.0)
    net = uuid.uuid4().hex[:4]
    answers = await asyncio.gather(
        *(login(secured, f"2001:db8:{net}:7::{i:x}", unique_email(), WRONG) for i in range(1, 31))
    )
    assert sum(answer.status_code == 429 for answer in answers) >= 20
    # another /64 has its own budget
    other = await login(secured, f"2001:db8:{net}:8::1", unique_email(), WRONG)
    assert other.status_code == 401
