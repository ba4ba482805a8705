"""Accounts: sessions, WebSocket tickets, and revocations seen across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from quantsaas.accounts.models import Session, WsTicket
from quantsaas.accounts.service import Accounts, Principal, Revocation
from quantsaas.accounts.tiers import load_tiers

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest_asyncio.fixture
async def other(accounts_url: str, accounts: Accounts) -> AsyncIterator[Accounts]:
    """A second instance on the same database: another API process, or the CLI."""
    second = await Accounts.open(accounts_url, load_tiers())
    yield second
    await second.close()


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def count(accounts: Accounts, table: type[Session] | type[WsTicket]) -> int:
    async with accounts._engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


# -- sessions ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_session_lifecycle(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123", tier="pro")
    token = await accounts.create_session(user.id)
    assert len(token) == 43
    expected = Principal(user.id, "a@b.c", "pro", False, None, session=True)
    assert await accounts.resolve_session(token) == expected
    assert await accounts.resolve_session(token) == expected  # cached
    other = await accounts.create_session(user.id)
    assert other != token
    await accounts.end_session(token)
    assert await accounts.resolve_session(token) is None
    assert await accounts.resolve_session(other) == expected  # only that session ended
    await accounts.end_session(token)  # twice is fine
    for bad in ("", "x", token + "x", "A" * 43):
        assert await accounts.resolve_session(bad) is None


@pytest.mark.asyncio
async def test_sessions_expire_even_when_cached(accounts_url: str) -> None:
    accounts = await Accounts.open(accounts_url, load_tiers(), session_ttl_s=0.3)
    try:
        user = await accounts.add_user("a@b.c", "password123")
        cached = await accounts.create_session(user.id)
        assert await accounts.resolve_session(cached) is not None
        uncached = await accounts.create_session(user.id)
        await asyncio.sleep(0.4)
        assert await accounts.resolve_session(cached) is None
        assert await accounts.resolve_session(uncached) is None
        assert await count(accounts, Session) == 2
        await accounts.purge()
        assert await count(accounts, Session) == 0
    finally:
        await accounts.close()


# -- tickets ----------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_ticket_works_once(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, key = await accounts.create_key(user.id, "k")
    by_key = await accounts.resolve_key(text)
    assert by_key is not None
    ticket = await accounts.mint_ticket(by_key)
    assert await accounts.redeem_ticket(ticket) == by_key
    assert await accounts.redeem_ticket(ticket) is None
    by_session = await accounts.resolve_session(await accounts.create_session(user.id))
    assert by_session is not None
    ticket = await accounts.mint_ticket(by_session)
    redeemed = await accounts.redeem_ticket(ticket)
    assert redeemed == by_session and redeemed.session and redeemed.key_id is None
    assert await count(accounts, WsTicket) == 0


@pytest.mark.asyncio
async def test_concurrent_redemptions_of_one_ticket_succeed_once(
    accounts: Accounts, other: Accounts
) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    principal = await accounts.resolve_session(await accounts.create_session(user.id))
    assert principal is not None
    ticket = await accounts.mint_ticket(principal)
    results = await asyncio.gather(
        *(instance.redeem_ticket(ticket) for instance in [accounts, other] * 4)
    )
    assert sum(result is not None for result in results) == 1


@pytest.mark.asyncio
async def test_tickets_expire(accounts_url: str) -> None:
    accounts = await Accounts.open(accounts_url, load_tiers(), ticket_ttl_s=0.2)
    try:
        user = await accounts.add_user("a@b.c", "password123")
        principal = Principal(user.id, "a@b.c", "free", False, None, session=True)
        ticket = await accounts.mint_ticket(principal)
        stale = await accounts.mint_ticket(principal)
        await asyncio.sleep(0.3)
        assert await accounts.redeem_ticket(ticket) is None
        assert await count(accounts, WsTicket) == 1
        await accounts.purge()
        assert await count(accounts, WsTicket) == 0
        assert await accounts.redeem_ticket(stale) is None
    finally:
        await accounts.close()


@pytest.mark.asyncio
async def test_tickets_die_with_their_key_or_user(accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, key = await accounts.create_key(user.id, "k")
    principal = await accounts.resolve_key(text)
    assert principal is not None
    ticket = await accounts.mint_ticket(principal)
    await accounts.revoke_key(key.key_id, user.id)
    assert await accounts.redeem_ticket(ticket) is None
    by_session = Principal(user.id, "a@b.c", "free", False, None, session=True)
    ticket = await accounts.mint_ticket(by_session)
    await accounts.set_disabled("a@b.c", True)
    assert await accounts.redeem_ticket(ticket) is None
    with pytest.raises(ValueError):
        await accounts.mint_ticket(Principal.anonymous("demo"))
    for bad in ("", "nope", "A" * 43):
        assert await accounts.redeem_ticket(bad) is None


# -- revocations across processes -------------------------------------------------------------


@pytest.mark.asyncio
async def test_watch_revocations_sees_what_another_process_revoked(
    accounts: Accounts, other: Accounts
) -> None:
    alice = await accounts.add_user("alice@b.c", "password123", tier="pro")
    bob = await accounts.add_user("bob@b.c", "password123")
    alice_key, key = await accounts.create_key(alice.id, "k")
    bob_key, _ = await accounts.create_key(bob.id, "k")
    bob_session = await accounts.create_session(bob.id)
    for resolved in (
        await accounts.resolve_key(alice_key),
        await accounts.resolve_key(bob_key),
        await accounts.resolve_session(bob_session),
    ):
        assert resolved is not None  # all three are cached now
    seen: list[Revocation] = []
    accounts.on_revoked(seen.append)
    watcher = asyncio.create_task(accounts.watch_revocations())
    try:
        await other.revoke_key(key.key_id, None)
        await eventually(lambda: len(seen) == 1)
        assert seen == [Revocation(key.key_id, alice.id)]
        assert await accounts.resolve_key(alice_key) is None
        assert await accounts.resolve_key(bob_key) is not None

        await other.set_disabled("bob@b.c", True)
        await eventually(lambda: len(seen) == 2)
        assert seen[1] == Revocation(None, bob.id)
        assert await accounts.resolve_key(bob_key) is None
        assert await accounts.resolve_session(bob_session) is None
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


@pytest.mark.asyncio
async def test_polling_applies_tier_changes_and_logouts_of_other_processes(
    accounts: Accounts, other: Accounts
) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    token = await accounts.create_session(user.id)
    assert (await accounts.resolve_key(text)) is not None
    assert (await accounts.resolve_session(token)) is not None
    await other.set_tier("a@b.c", "enterprise")
    await other.end_session(token)
    stale = await accounts.resolve_key(text)
    assert stale is not None and stale.tier == "free"  # cached until the poll
    assert await accounts.resolve_session(token) is not None
    assert await accounts.poll_changes() == 2
    fresh = await accounts.resolve_key(text)
    assert fresh is not None and fresh.tier == "enterprise"
    assert await accounts.resolve_session(token) is None
    assert await accounts.poll_changes() == 0


@pytest.mark.asyncio
async def test_a_password_change_ends_sessions_in_every_process(
    accounts: Accounts, other: Accounts
) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    token = await accounts.create_session(user.id)
    assert (await accounts.resolve_session(token)) is not None  # cached here
    assert not await other.change_password(user.id, "wrong password", "new password 1")
    assert await other.change_password(user.id, "password123", "new password 1")
    assert await accounts.poll_changes() == 1
    assert await accounts.resolve_session(token) is None
    assert await accounts.resolve_key(text) is not None  # keys are not sessions
    assert await accounts.authenticate("a@b.c", "password123") is None
    assert await accounts.authenticate("a@b.c", "new password 1") is not None
    assert await count(accounts, Session) == 0


@pytest.mark.asyncio
async def test_a_new_process_does_not_replay_old_revocations(
    accounts_url: str, accounts: Accounts
) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    _, key = await accounts.create_key(user.id, "k")
    await accounts.revoke_key(key.key_id, user.id)
    late = await Accounts.open(accounts_url, load_tiers())
    try:
        seen: list[Revocation] = []
        late.on_revoked(seen.append)
        assert await late.poll_changes() == 0
        assert seen == []
    finally:
        await late.close()


@pytest.mark.asyncio
async def test_usage_is_flushed_by_the_watcher(accounts_url: str) -> None:
    accounts = await Accounts.open(accounts_url, load_tiers(), poll_s=0.02, usage_flush_s=0.05)
    try:
        user = await accounts.add_user("a@b.c", "password123")
        text, _ = await accounts.create_key(user.id, "k")
        assert await accounts.resolve_key(text) is not None
        watcher = asyncio.create_task(accounts.watch_revocations())
        try:
            for _ in range(200):
                if (await accounts.list_keys(user.id))[0].last_used_at is not None:
                    break
                await asyncio.sleep(0.02)
            assert (await accounts.list_keys(user.id))[0].last_used_at is not None
        finally:
            watcher.cancel()
            with pytest.raises(asyncio.CancelledError):
                await watcher
    finally:
        await accounts.close()


@pytest.mark.asyncio
async def test_close_flushes_pending_usage(accounts_url: str, accounts: Accounts) -> None:
    user = await accounts.add_user("a@b.c", "password123")
    text, _ = await accounts.create_key(user.id, "k")
    second = await Accounts.open(accounts_url, load_tiers())
    assert await second.resolve_key(text) is not None
    await second.close()
    assert (await accounts.list_keys(user.id))[0].last_used_at is not None
