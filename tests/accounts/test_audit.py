"""The audit trail: rows and `quantsaas.audit` log lines; old rows pruned by the retention."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from quantsaas.accounts.models import AuditEvent
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers


@pytest.mark.asyncio
async def test_every_event_is_a_row_and_a_log_line(
    accounts: Accounts, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="quantsaas.audit"):
        await accounts.audit("user.login_failed", user_id=7, ip="198.51.100.7", detail="a@b.c")
        await accounts.audit("request.denied", ip="198.51.100.7", detail="logged", log=False)
    (line,) = [r for r in caplog.records if r.name == "quantsaas.audit"]
    assert line.getMessage() == "user.login_failed"
    assert (line.user_id, line.ip, line.detail) == (7, "198.51.100.7", "a@b.c")  # type: ignore[attr-defined]
    assert [e.event for e in await accounts.audit_events(10)] == [
        "request.denied",
        "user.login_failed",
    ]


@pytest.mark.asyncio
async def test_rows_older_than_the_retention_are_pruned(
    accounts_url: str, fast_passwords: None
) -> None:
    accounts = await Accounts.open(accounts_url, load_tiers(), audit_retention_days=30)
    try:
        old = datetime.now(UTC) - timedelta(days=31)
        async with accounts._engine.begin() as conn:
            await conn.execute(insert(AuditEvent).values(at=old, event="user.login", detail=""))
        await accounts.audit("user.login", detail="recent")
        await accounts.purge()
        assert [e.detail for e in await accounts.audit_events(10)] == ["recent"]
    finally:
        await accounts.close()
    keeping = await Accounts.open(accounts_url, load_tiers())  # 0: everything is kept
    try:
        async with keeping._engine.begin() as conn:
            await conn.execute(insert(AuditEvent).values(at=old, event="user.login", detail="x"))
        await keeping.purge()
        assert len(await keeping.audit_events(10)) == 2
    finally:
        await keeping.close()
