"""The change feed: what every process must learn when credentials change.

A change is a row of `account_changes` (kind, user, subject), written in the same transaction as
the change itself: a key revoked (`key`, subject = key id), a user disabled (`user`), a tier
changed (`tier`), a password changed (`password`), a session ended (`session`, subject = its
digest). Each process polls the rows above the last id it saw (about once a second), drops what
its credential cache holds for them and tells its listeners (the open WebSockets), so a change
made by the CLI or another API process reaches every process; its own changes it applied when
it made them.

A revocation is refused in this process before it is written (accounts/cache.py `deny`). When
the write fails (a full disk, the database away) it is kept and retried on every poll until it
succeeds: `unwritten` lists what other processes do not know yet (/readyz is not ready).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from quantsaas.accounts.cache import CredentialCache
from quantsaas.accounts.models import AccountChange
from quantsaas.accounts.views import Revocation
from quantsaas.errors import RevocationPending

Write = Callable[[AsyncConnection], Awaitable[None]]

log = logging.getLogger("quantsaas.accounts")


class ChangeFeed:
    def __init__(self, engine: AsyncEngine, writer: AsyncEngine, cache: CredentialCache) -> None:
        self._engine = engine
        self._writer = writer
        self._cache = cache
        self._listeners: list[Callable[[Revocation], None]] = []
        self.last_seen = 0
        self._own: set[int] = set()
        self.unwritten: dict[tuple[str, object], tuple[str, Write]] = {}
        """Revocations in force here whose write failed: (kind, subject) -> (what, write)."""

    async def write_revocation(self, kind: str, subject: object, what: str, write: Write) -> None:
        """Run `write` in a write transaction; when it fails, keep it for `retry` and raise
        RevocationPending. The caller has denied (kind, subject) in the cache already; once
        the write is done the database refuses it and the denial is dropped."""
        try:
            async with self._writer.begin() as conn:
                await write(conn)
        except (SQLAlchemyError, OSError) as exc:
            self.unwritten[(kind, subject)] = (what, write)
            log.error("%s: refused by this process, but not written (%s); retrying", what, exc)
            raise RevocationPending(
                f"{what}: refused by this process now; writing it failed ({str(exc)[:100]}) "
                "and is retried until it succeeds"
            ) from exc
        self.unwritten.pop((kind, subject), None)
        self._cache.allow(kind, subject)  # written: the database refuses it from now on

    def forget_unwritten(self, kind: str, subject: object) -> None:
        self.unwritten.pop((kind, subject), None)

    async def retry(self) -> int:
        """Try every unwritten revocation again; how many are still unwritten."""
        for (kind, subject), (what, write) in list(self.unwritten.items()):
            try:
                async with self._writer.begin() as conn:
                    await write(conn)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("%s: still not written: %s", what, exc)
                continue
            log.warning("%s: written at last", what)
            self.unwritten.pop((kind, subject), None)
            self._cache.allow(kind, subject)
        return len(self.unwritten)

    async def start(self) -> None:
        """Start after the newest change: older ones concern caches this process never had."""
        async with self._engine.connect() as conn:
            newest = await conn.scalar(select(func.max(AccountChange.id)))
        self.last_seen = newest or 0

    def on_revoked(self, callback: Callable[[Revocation], None]) -> None:
        self._listeners.append(callback)

    def fire(self, revocation: Revocation) -> None:
        for callback in self._listeners:
            try:
                callback(revocation)
            except Exception:
                log.exception("revocation listener failed")

    async def record(
        self, conn: AsyncConnection, kind: str, user_id: int, subject: str | None = None
    ) -> None:
        """Append a change inside the caller's transaction."""
        change_id = await conn.scalar(
            insert(AccountChange)
            .values(at=datetime.now(UTC), kind=kind, user_id=user_id, subject=subject)
            .returning(AccountChange.id)
        )
        self._own.add(cast(int, change_id))

    async def poll(self) -> int:
        """Apply the changes other processes made since the last poll; how many were new."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(AccountChange)
                    .where(AccountChange.id > self.last_seen)
                    .order_by(AccountChange.id)
                    .limit(1000)
                )
            ).all()
        applied = 0
        for change in rows:
            self.last_seen = max(self.last_seen, change.id)
            if change.id in self._own:
                self._own.discard(change.id)
                continue
            applied += 1
            self.apply(change.kind, change.user_id, change.subject)
        return applied

    def apply(self, kind: str, user_id: int | None, subject: str | None) -> None:
        """Drop what the cache holds for one change and tell the listeners."""
        cache = self._cache
        if kind == "key" and subject is not None:
            cache.forget_key(subject)
            self.fire(Revocation(subject, user_id))
        elif kind == "user" and user_id is not None:
            cache.forget_user(user_id)
            self.fire(Revocation(None, user_id))
        elif kind in ("tier", "password") and user_id is not None:
            cache.forget_user(user_id)
            self.fire(Revocation(None, user_id, kind))
        elif kind == "session" and subject is not None:
            cache.forget_session(subject)
            self.fire(Revocation(None, user_id, "session", subject))
