"""The audit log: every event is a row of `audit_events` and a line of the `quantsaas.audit`
logger (so log shipping sees what the table holds); rows older than the retention are pruned."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantsaas.accounts.models import AuditEvent
from quantsaas.accounts.views import AuditView

audit_log = logging.getLogger("quantsaas.audit")


async def write_event(
    writer: AsyncEngine,  # the engine with the write-transaction options (store.IMMEDIATE)
    event: str,
    user_id: int | None,
    key_id: str | None,
    ip: str | None,
    detail: str,
    log: bool = True,
) -> None:
    """Append an event; `log=False` when the caller has logged it already (denials)."""
    if log:
        audit_log.info(
            "%s", event, extra={"user_id": user_id, "key_id": key_id, "ip": ip, "detail": detail}
        )
    async with writer.begin() as conn:
        await conn.execute(
            insert(AuditEvent).values(
                at=datetime.now(UTC),
                event=event[:64],
                user_id=user_id,
                key_id=key_id,
                ip=None if ip is None else ip[:64],
                detail=detail[:2000],
            )
        )


async def read_events(engine: AsyncEngine, limit: int) -> list[AuditView]:
    """The newest `limit` events, newest first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, limit))
            )
        ).all()
    return [AuditView(r.id, r.at, r.event, r.user_id, r.key_id, r.ip, r.detail) for r in rows]


async def prune_events(writer: AsyncEngine, older_than: timedelta) -> None:
    """Delete the events older than `older_than`."""
    async with writer.begin() as conn:
        cutoff = datetime.now(UTC) - older_than
        await conn.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
