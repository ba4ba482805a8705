"""The audit log table: append an event, read the newest ones."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from quantsaas.accounts.models import AuditEvent
from quantsaas.accounts.views import AuditView


async def write_event(
    writer: AsyncEngine,  # the engine with the write-transaction options (store.IMMEDIATE)
    event: str,
    user_id: int | None,
    key_id: str | None,
    ip: str | None,
    detail: str,
) -> None:
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
