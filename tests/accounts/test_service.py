"""Accounts: users, passwords and API keys, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import event, select

from quantsaas.accounts import passwords
from quantsaas.accounts.keys import parse_key
from quantsaas.accounts.models import User
from quantsaas.accounts.service import Accounts, Principal, Revocation
from quantsaas.accounts.tiers import load_tiers
from quantsaas.errors import (
    AccountNotFound,
    ConfigError,
    EmailTaken,
    InvalidEmail,
    KeyLimitReached,
    UnknownTier,
    WeakPassword,
)

pytestmark = pytest.mark.usefixtures("fast_passwords")


def count_statements(accounts: Accounts) -> list[str]:
    """Every SQL statement the instance runs from now on."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(accounts._engine.sync_engine, "before_cursor_execute", record)
    return statements


# -- users ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_add_user_normalises_the_email_and_reads_back(accounts: Accounts) -> None:
    before = datetime.now(UTC)
    user = await accounts.add_user("  Alice@Example.COM ", "password123", tier="pro")
    assert (user.email, user.tier, user.is_admin, user.disabled) == (
        "alice@example.com",
        "pro",
        False,
        False,
    )
    assert before - timedelta(seconds=1) <= user.created_at <= datetime.now(UTC)
    assert user.created_at.tzinfo is not None
    stored = await accounts.get_user(user.id)
    assert stored is not None and stored.email == user.email and stored.tier == "pro"
    assert stored.created_at == user.created_at.replace(microsecond=stored.created_at.microsecond)
    admin = await accounts.add_user("root@example.com", "password123", is_admin=True)
    assert [u.email for u in await accounts.list_users()] == [user.email, admin.email]
    assert (await accounts.find_user("ROOT@example.com")).is_admin
    assert await accounts.get_user(12345) is None
    with pytest.raises(AccountNotFound):
        await accounts.find_user("nobody@example.com")


@pytest.mark.asyncio
async def test_add_user_refuses_bad_input(accounts: Accounts) -> None:
    await accounts.add_user("a@b.c", "password123")
    with pytest.raises(EmailTaken):
        await accounts.add_user("A@B.C", "otherpassword")
    for email in ("", "no-at-sign", "a@", "@b", "a b@c.d", "x" * 250 + "@b.cd"):
        with pytest.raises(InvalidEmail):
            await accounts.add_user(email, "password123")
    for password in ("short", "p" * 129):
        with pytest.raises(WeakPassword):
            await accounts.add_user("new@b.c", password)
    with pytest.raises(UnknownTier) as caught:
        await accounts.add_user("new@b.c", "password123", tier="gold")
    assert isinstance(caught.value, ConfigError)
    assert [u.email for u in await accounts.list_users()] == ["a@b.c"]


@pytest.mark.asyncio
async def test_authenticate(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    assert await accounts.authenticate("A@b.c ", "password123") == user
    assert await accounts.authenticate("a@b.c", "password124") is None
    assert await accounts.authenticate("a@b.c", "") is None
    assert await accounts.authenticate("x@b.c", "password123") is None
    assert await accounts.authenticate("not an email", "password123") is None
    await accounts.set_disabled("a@b.c", True)
    assert await accounts.authenticate("a@b.c", "password123") is None
    await accounts.set_disabled("a@b.c", False)
    assert await accounts.authenticate("a@b.c", "password123") is not None


@pytest.mark.asyncio
async def test_unknown_users_cost_a_hash_verification_too(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    await accounts.add_user("a@b.c", "password123")
    verified: list[str] = []
    real = passwords.verify_password

    def spy(password: str, hashed: str) -> tuple[bool, str | None]:
        verified.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(passwords, "verify_password", spy)
    assert await accounts.authenticate("nobody@b.c", "password123") is None
    assert await accounts.authenticate("a@b.c", "wrong-password") is None
    assert len(verified) == 2
    assert verified[0].startswith("$argon2id$")  # a real (dummy) hash was verified


@pytest.mark.asyncio
async def test_login_upgrades_an_outdated_hash(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await accounts.add_user("a@b.c", "password123")

    async def stored_hash() -> str:
        async with accounts._engine.connect() as conn:
            return str(await conn.scalar(select(User.password_hash).where(User.id == user.id)))

    old = await stored_hash()
    stronger = PasswordHash((Argon2Hasher(time_cost=2, memory_cost=2048, parallelism=1),))
    monkeypatch.setattr(passwords, "HASHER", stronger)
    assert await accounts.authenticate("a@b.c", "wrong-password") is None
    assert await stored_hash() == old  # a failed login changes nothing
    assert await accounts.authenticate("a@b.c", "password123") is not None
    new = await stored_hash()
    assert new != old and "m=2048,t=2" in new
    assert await accounts.authenticate("a@b.c", "password123") is not None


@pytest.mark.asyncio
async def test_set_tier(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    assert (await accounts.resolve_key(text)) is not None
    assert (await accounts.set_tier("a@b.c", "pro")).tier == "pro"
    principal = await accounts.resolve_key(text)  # the cached principal was dropped
    assert principal is not None and principal.tier == "pro"
    with pytest.raises(UnknownTier):
        await accounts.set_tier("a@b.c", "gold")
    with pytest.raises(AccountNotFound):
        await accounts.set_tier("x@b.c", "pro")


@pytest.mark.asyncio
async def test_bootstrap_admin_only_on_an_empty_database(accounts: Accounts) -> None:
    created = await accounts.bootstrap_admin()
    assert created is not None
    email, password = created
    assert email == "admin@localhost" and len(password) >= 16
    admin = await accounts.authenticate(email, password)
    assert admin is not None and admin.is_admin and admin.tier == "enterprise"
    assert await accounts.bootstrap_admin() is None
    assert len(await accounts.list_users()) == 1


@pytest.mark.asyncio
async def test_no_bootstrap_when_users_exist(accounts: Accounts) -> None:
    await accounts.add_user("a@b.c", "password123")
    assert await accounts.bootstrap_admin() is None
    assert [u.email for u in await accounts.list_users()] == ["a@b.c"]


@pytest.mark.asyncio
async def test_ping_and_audit(accounts: Accounts) -> None:
    assert await accounts.ping()
    assert await accounts.audit_events() == []
    await accounts.audit("login.failed", ip="203.0.113.9", detail="x" * 5000)
    await accounts.audit("key.created", user_id=7, key_id="0123456789ab")
    newest, oldest = await accounts.audit_events()
    assert (newest.event, newest.user_id, newest.key_id, newest.ip, newest.detail) == (
        "key.created",
        7,
        "0123456789ab",
        None,
        "",
    )
    assert (oldest.event, oldest.ip, len(oldest.detail)) == ("login.failed", "203.0.113.9", 2000)
    assert newest.id > oldest.id and newest.at >= oldest.at and newest.at.tzinfo is not None
    assert [e.event for e in await accounts.audit_events(limit=1)] == ["key.created"]


# -- API keys ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_create_and_resolve_a_key(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123", tier="pro", is_admin=True)
    text, key = await accounts.create_key(user.id, "  bot  ")
    assert parse_key(text) == key.key_id
    assert (key.user_id, key.name, key.last_used_at, key.revoked_at) == (user.id, "bot", None, None)
    assert await accounts.resolve_key(text) == Principal(
        user_id=user.id, email="a@b.c", tier="pro", is_admin=True, key_id=key.key_id
    )
    assert await accounts.list_keys(user.id) == [key.__class__(**key.__dict__)]
    _, unnamed = await accounts.create_key(user.id, "")
    assert unnamed.name == "default"


@pytest.mark.asyncio
async def test_resolve_key_refuses_wrong_secrets(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, key = await accounts.create_key(user.id, "k")
    forged = text[:-1] + ("A" if text[-1] != "A" else "B")  # same key id, other secret
    assert await accounts.resolve_key(forged) is None
    assert await accounts.resolve_key(f"qs_{'0' * 12}_{'A' * 43}") is None
    assert await accounts.resolve_key("garbage") is None
    assert await accounts.resolve_key(text + "x") is None
    assert await accounts.resolve_key(text) is not None
    assert await accounts.resolve_key(forged) is None  # caching the real key changed nothing


@pytest.mark.asyncio
async def test_resolving_a_cached_key_runs_no_sql(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    statements = count_statements(accounts)
    assert await accounts.resolve_key(text) is not None
    first_lookup = len(statements)
    assert any("api_keys" in s for s in statements)  # the first one read the database
    for _ in range(1000):
        assert await accounts.resolve_key(text) is not None
    assert len(statements) == first_lookup  # (its speed: bench/README.md, not a timed test)


@pytest.mark.asyncio
async def test_last_used_is_written_in_batches(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, key = await accounts.create_key(user.id, "k")
    _, unused = await accounts.create_key(user.id, "k2")
    before = datetime.now(UTC) - timedelta(seconds=1)
    for _ in range(50):
        await accounts.resolve_key(text)
    assert all(k.last_used_at is None for k in await accounts.list_keys(user.id))
    statements = count_statements(accounts)
    await accounts.flush_usage()
    assert sum("UPDATE" in s.upper() for s in statements) == 1
    used = {k.key_id: k.last_used_at for k in await accounts.list_keys(user.id)}
    stamp = used[key.key_id]
    assert stamp is not None and before <= stamp <= datetime.now(UTC)
    assert used[unused.key_id] is None
    statements.clear()
    await accounts.flush_usage()  # nothing pending: no statement
    assert statements == []


@pytest.mark.asyncio
async def test_key_limit_of_the_tier(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")  # free: 2 keys
    first = (await accounts.create_key(user.id, "1"))[1]
    await accounts.create_key(user.id, "2")
    with pytest.raises(KeyLimitReached):
        await accounts.create_key(user.id, "3")
    await accounts.revoke_key(first.key_id, user.id)
    await accounts.create_key(user.id, "3")  # revoked keys do not count
    assert len(await accounts.list_keys(user.id)) == 3


@pytest.mark.asyncio
async def test_concurrent_key_creation_cannot_pass_the_limit(accounts_url: str) -> None:
    first = await Accounts.open(accounts_url, load_tiers())
    second = await Accounts.open(accounts_url, load_tiers())
    try:
        user = await first.add_user("a@b.c", "password123")
        results = await asyncio.gather(
            *(a.create_key(user.id, str(i)) for i, a in enumerate([first, second] * 3)),
            return_exceptions=True,
        )
        assert sum(isinstance(r, tuple) for r in results) == 2
        assert sum(isinstance(r, KeyLimitReached) for r in results) == 4
    finally:
        await first.close()
        await second.close()


@pytest.mark.asyncio
async def test_keys_of_unknown_or_disabled_users(accounts: Accounts) -> None:
    with pytest.raises(AccountNotFound):
        await accounts.create_key(999, "k")
    user = await accounts.add_user("a@b.c", "password123")
    await accounts.set_disabled("a@b.c", True)
    with pytest.raises(AccountNotFound):
        await accounts.create_key(user.id, "k")
    assert await accounts.list_keys(999) == []


@pytest.mark.asyncio
async def test_revoke_is_scoped_to_the_owner(accounts: Accounts) -> None:
    alice = await accounts.add_user("alice@b.c", "password123")
    mallory = await accounts.add_user("mallory@b.c", "password123")
    text, key = await accounts.create_key(alice.id, "k")
    with pytest.raises(AccountNotFound) as caught:
        await accounts.revoke_key(key.key_id, mallory.id)  # BOLA: not hers
    assert isinstance(caught.value, KeyError)
    with pytest.raises(AccountNotFound):
        await accounts.revoke_key("0" * 12, alice.id)
    assert await accounts.resolve_key(text) is not None
    assert [k.key_id for k in await accounts.list_keys(mallory.id)] == []
    revoked = await accounts.revoke_key(key.key_id, alice.id)
    assert revoked.revoked_at is not None
    again = await accounts.revoke_key(key.key_id, None)  # admin; already revoked: unchanged
    assert again.revoked_at is not None
    assert abs(again.revoked_at - revoked.revoked_at) < timedelta(milliseconds=1)
    listed = await accounts.list_keys(alice.id)
    assert [(k.key_id, k.revoked_at is not None) for k in listed] == [(key.key_id, True)]


@pytest.mark.asyncio
async def test_revoking_drops_the_cached_key_and_notifies(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, key = await accounts.create_key(user.id, "k")
    other, _ = await accounts.create_key(user.id, "other")
    seen: list[Revocation] = []
    accounts.on_revoked(seen.append)
    assert await accounts.resolve_key(text) is not None
    assert await accounts.resolve_key(other) is not None
    await accounts.revoke_key(key.key_id, None)
    assert await accounts.resolve_key(text) is None
    assert await accounts.resolve_key(other) is not None
    assert seen == [Revocation(key.key_id, user.id)]
    assert await accounts.poll_changes() == 0  # our own change is not delivered twice
    assert seen == [Revocation(key.key_id, user.id)]


@pytest.mark.asyncio
async def test_disabling_a_user_revokes_keys_and_sessions(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    bystander = await accounts.add_user("b@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    other, _ = await accounts.create_key(bystander.id, "k")
    token = await accounts.create_session(user.id)
    seen: list[Revocation] = []
    accounts.on_revoked(seen.append)
    assert await accounts.resolve_key(text) is not None
    assert await accounts.resolve_session(token) is not None
    disabled = await accounts.set_disabled("a@b.c", True)
    assert disabled.disabled
    assert await accounts.resolve_key(text) is None
    assert await accounts.resolve_session(token) is None
    assert await accounts.resolve_key(other) is not None
    assert seen == [Revocation(None, user.id)]
    assert not (await accounts.set_disabled("a@b.c", False)).disabled
    assert await accounts.resolve_key(text) is not None  # keys survive, sessions do not
    assert await accounts.resolve_session(token) is None
    with pytest.raises(AccountNotFound):
        await accounts.create_session(999)


@pytest.mark.asyncio
async def test_a_failing_listener_does_not_stop_the_others(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    _, key = await accounts.create_key(user.id, "k")
    seen: list[Revocation] = []

    def broken(_: Revocation) -> None:
        raise RuntimeError("listener bug")

    accounts.on_revoked(broken)
    accounts.on_revoked(seen.append)
    await accounts.revoke_key(key.key_id, user.id)
    assert seen == [Revocation(key.key_id, user.id)]
