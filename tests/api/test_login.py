"""Login limits that hold under concurrency and do not lock the owner out. Runs on SQLite + the
memory limiter and on PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from helpers import PostgresServer
from quantsaas.accounts import passwords
from quantsaas.api.login import DEVICE_COOKIE
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


async def login_as(
    service: Secured, ip: str, email: str, password: str, device: str | None = None
) -> httpx.Response:
    cookies = {DEVICE_COOKIE: device} if device else None
    async with from_address(service, ip, cookies=cookies) as http:
        return await http.post("/api/v1/auth/login", json={"email": email, "password": password})


def net() -> str:
    """A fresh /24 of TEST-NET-3 per test (one Redis serves the whole session)."""
    return f"203.0.{uuid.uuid4().int % 250}"


@pytest.mark.asyncio
async def test_guessing_locks_unknown_clients_out_but_not_the_owner(secured: Secured) -> None:
    email, base = unique_email(), net()
    await secured.accounts.add_user(email, PASSWORD, tier="free")
    home = f"{base}.1"
    first = await login_as(secured, home, email, PASSWORD)
    assert first.status_code == 200
    device = first.cookies[DEVICE_COOKIE]
    # an attacker guesses from many addresses: the account locks for unknown clients
    guesses = [await login_as(secured, f"{base}.{i}", email, WRONG) for i in range(10, 20)]
    assert [g.status_code for g in guesses[:5]] == [401] * 5
    assert {g.status_code for g in guesses[5:]} == {429}
    assert guesses[-1].json()["code"] == "login-locked"
    assert int(guesses[-1].headers["retry-after"]) >= 1
    # even the right password from a fresh address, without the cookie, waits
    assert (await login_as(secured, f"{base}.99", email, PASSWORD)).status_code == 429
    # the owner's browser (device cookie) gets in from anywhere
    travelling = await login_as(secured, f"{base}.77", email, PASSWORD, device)
    assert travelling.status_code == 200
    # and so does the right password from an address the owner signed in from before
    assert (await login_as(secured, home, email, PASSWORD)).status_code == 200
    # but not a wrong one from there once the budget is spent... it is verified, and fails
    assert (await login_as(secured, home, email, WRONG)).status_code == 401


@pytest.mark.asyncio
async def test_a_device_cookie_buys_only_a_few_guesses_and_only_for_its_account(
    secured: Secured,
) -> None:
    email, other, base = unique_email(), unique_email(), net()
    for address in (email, other):
        await secured.accounts.add_user(address, PASSWORD, tier="free")
    device = (await login_as(secured, f"{base}.1", email, PASSWORD)).cookies[DEVICE_COOKIE]
    for i in range(5):  # spend the account's budget for unknown clients
        await login_as(secured, f"{base}.{10 + i}", email, WRONG)
    stolen = [await login_as(secured, f"{base}.50", email, WRONG, device) for _ in range(6)]
    assert [s.status_code for s in stolen[:5]] == [401] * 5
    assert stolen[5].status_code == 429  # the cookie is spent: an unknown client again
    # a cookie of one account is no cookie for another
    forged = device
    for i in range(5):
        await login_as(secured, f"{base}.{20 + i}", other, WRONG)
    assert (await login_as(secured, f"{base}.60", other, PASSWORD, forged)).status_code == 429
    assert (await login_as(secured, f"{base}.61", email, PASSWORD, "d1.1.x.y")).status_code == 429


@pytest.mark.asyncio
async def test_one_address_backs_off_exponentially(secured: Secured) -> None:
    address = f"{net()}.1"
    answers = [await login_as(secured, address, unique_email(), WRONG) for _ in range(7)]
    assert [a.status_code for a in answers] == [401] * 6 + [429]  # 5 free, the 6th sets 1 s
    assert answers[-1].json()["code"] == "rate-limited"
    assert answers[-1].headers["retry-after"] == "1"
    await asyncio.sleep(1.05)
    assert (await login_as(secured, address, unique_email(), WRONG)).status_code == 401
    waiting = await login_as(secured, address, unique_email(), WRONG)
    assert waiting.status_code == 429 and waiting.headers["retry-after"] == "2"
    # another address is not held back
    assert (await login_as(secured, f"{net()}.2", unique_email(), WRONG)).status_code == 401


@pytest.mark.asyncio
async def test_lock_out_pressure_is_in_metrics_and_the_audit_log(secured: Secured) -> None:
    email, base = unique_email(), net()
    user = await secured.accounts.add_user(email, PASSWORD, tier="free")
    for i in range(7):
        await login_as(secured, f"{base}.{i}", email, WRONG)
    async with secured.client() as http:
        metrics = (await http.get("/metrics")).text
    assert 'quantsaas_login_attempts_total{outcome="account-locked"} 2.0' in metrics
    assert 'quantsaas_login_attempts_total{outcome="failed"} 5.0' in metrics
    assert "quantsaas_login_locked_accounts 1.0" in metrics
    events = await secured.accounts.audit_events(50)
    locked = [e for e in events if "login-locked" in e.detail]
    assert locked and all(e.user_id == user.id for e in locked)


@pytest.mark.asyncio
async def test_escape_sequences_in_an_email_never_reach_the_audit_log_raw(
    secured: Secured,
) -> None:
    attack = "x\x1b]0;pwned\x07\x1b[2J@example.com"
    answer = await login_as(secured, f"{net()}.1", attack, WRONG)
    assert answer.status_code == 401
    async with from_address(secured, f"{net()}.2") as http:
        signup = await http.post(
            "/api/v1/auth/signup", json={"email": "nul\u0000@example.com", "password": PASSWORD}
        )
    assert signup.status_code == 422
    failed = [e for e in await secured.accounts.audit_events(20) if e.event == "user.login_failed"]
    assert failed and "\x1b" not in failed[0].detail and "\\x1b]0;pwned" in failed[0].detail


@pytest.mark.asyncio
async def test_failed_logins_reach_the_audit_logger_with_the_user_id(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    email = unique_email()
    user = await secured.accounts.add_user(email, PASSWORD, tier="free")
    with caplog.at_level(logging.INFO, logger="quantsaas.audit"):
        assert (await login_as(secured, f"{net()}.1", email, WRONG)).status_code == 401
        assert (await login_as(secured, f"{net()}.2", unique_email(), WRONG)).status_code == 401
    lines = [r for r in caplog.records if r.getMessage() == "user.login_failed"]
    assert [getattr(r, "user_id", "missing") for r in lines] == [user.id, None]
    rows = [e for e in await secured.accounts.audit_events(10) if e.event == "user.login_failed"]
    assert [e.user_id for e in rows] == [None, user.id]  # newest first
