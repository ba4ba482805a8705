"""Revocations reach every process, and one whose write fails is refused here at once and
written as soon as the database takes it. A trigger makes the real database refuse writes,
as a full disk does ("database or disk is full")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from helpers import accept_writes, refuse_writes
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.errors import RevocationPending

PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def other(accounts_url: str, accounts: Accounts) -> AsyncIterator[Accounts]:
    """The same database opened by a second process."""
    opened = await Accounts.open(accounts_url, load_tiers(), poll_s=0.05)
    yield opened
    await opened.close()


@pytest.mark.asyncio
async def test_a_revocation_that_cannot_be_written_is_refused_here_and_retried(
    accounts: Accounts, other: Accounts
) -> None:
    user = await accounts.add_user("a@example.com", PASSWORD, tier="pro")
    key, view = await accounts.create_key(user.id, "k")
    assert await accounts.resolve_key(key) is not None  # cached here
    assert await other.resolve_key(key) is not None
    assert await accounts.writable()
    await refuse_writes(accounts._engine, "account_changes")
    with pytest.raises(RevocationPending, match="refused by this process now"):
        await accounts.revoke_key(view.key_id, user.id)
    assert await accounts.resolve_key(key) is None  # at once, whatever the database says
    assert not await accounts.writable()  # /readyz: a revocation waits to be written
    assert await other.resolve_key(key) is not None  # the other process cannot know yet
    assert await accounts.poll_changes() == 0  # a retry fails again: still refused here
    assert await accounts.resolve_key(key) is None
    await accept_writes(accounts._engine, "account_changes")
    await accounts.poll_changes()  # the retry goes through
    assert not accounts.changes.unwritten and await accounts.writable()
    await other.poll_changes()
    assert await other.resolve_key(key) is None
    assert await accounts.resolve_key(key) is None  # the database refuses it now


@pytest.mark.asyncio
async def test_disabling_a_user_and_logging_out_survive_a_failed_write(
    accounts: Accounts, other: Accounts
) -> None:
    user = await accounts.add_user("b@example.com", PASSWORD, tier="pro")
    key, _ = await accounts.create_key(user.id, "k")
    session = await accounts.create_session(user.id)
    kept = await accounts.create_session(user.id)
    for token in (session, kept):
        assert await accounts.resolve_session(token) is not None
    await refuse_writes(accounts._engine, "account_changes")
    with pytest.raises(RevocationPending):
        await accounts.end_session(session)
    assert await accounts.resolve_session(session) is None
    assert await accounts.resolve_session(kept) is not None
    with pytest.raises(RevocationPending):
        await accounts.set_disabled("b@example.com", True)
    assert await accounts.resolve_key(key) is None
    assert await accounts.resolve_session(kept) is None
    assert len(accounts.changes.unwritten) == 2
    await accept_writes(accounts._engine, "account_changes")
    await accounts.poll_changes()
    assert not accounts.changes.unwritten
    await other.poll_changes()
    assert await other.resolve_key(key) is None
    assert await other.resolve_session(session) is None
    assert (await accounts.find_user("b@example.com")).disabled


@pytest.mark.asyncio
async def test_accounts_that_cannot_be_written_are_not_ready(accounts: Accounts) -> None:
    assert await accounts.writable()
    await refuse_writes(accounts._engine, "service_state")
    assert await accounts.ping()  # reading still works: that is why ping is not enough
    assert not await accounts.writable()
    await accept_writes(accounts._engine, "service_state")
    assert await accounts.writable()
