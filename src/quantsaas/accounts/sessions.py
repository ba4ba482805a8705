"""Dashboard sessions and WebSocket tickets: the part of Accounts behind the session cookie.

A session is an opaque token (`secrets.token_urlsafe(32)`) of which the table keeps only the
SHA-256 digest; a ticket is a single-use, short-lived token for `/ws?ticket=` (browsers cannot
send headers on a WebSocket). Resolved sessions are cached (accounts/cache.py); ending one is a
change every process learns (accounts/changes.py).
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from quantsaas.accounts.cache import CredentialCache
from quantsaas.accounts.changes import ChangeFeed
from quantsaas.accounts.keys import key_digest
from quantsaas.accounts.models import ApiKey, Session, User, WsTicket
from quantsaas.accounts.views import Principal, Revocation, principal_of
from quantsaas.errors import AccountNotFound

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
USER_COLUMNS = (User.id, User.email, User.tier, User.is_admin, User.disabled)
_USER = USER_COLUMNS


def _now() -> datetime:
    return datetime.now(UTC)


class Sessions:
    """Mixed into Accounts, whose constructor sets these attributes."""

    _engine: AsyncEngine
    _writer: AsyncEngine
    _cache: CredentialCache
    _session_ttl: timedelta
    _ticket_ttl: timedelta
    changes: ChangeFeed

    async def create_session(self, user_id: int) -> str:
        """A new dashboard session of an enabled user: the opaque token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = _now()
        async with self._writer.begin() as conn:
            disabled = await conn.scalar(select(User.disabled).where(User.id == user_id))
            if disabled is None or disabled:
                raise AccountNotFound(f"no user {user_id}")
            await conn.execute(
                insert(Session).values(
                    digest=key_digest(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + self._session_ttl,
                )
            )
        return token

    async def resolve_session(self, token: str) -> Principal | None:
        if not _TOKEN.fullmatch(token):
            return None
        digest = key_digest(token)
        cached = self._cache.session(digest, time.time())
        if cached is not None:
            return None if self._cache.refuses(cached, digest) else cached
        generation = self._cache.generation
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Session.expires_at, *_USER)
                    .join(User, User.id == Session.user_id)
                    .where(Session.digest == digest, Session.expires_at > _now())
                )
            ).first()
        if row is None or row.disabled:
            return None
        principal = principal_of(row, None, session=True, session_id=digest)
        if self._cache.refuses(principal, digest):
            return None
        self._cache.put_session(digest, principal, row.expires_at.timestamp(), generation)
        return principal

    async def end_session(self, token: str) -> None:
        """Log out: refused here at once; written (retried until it is) for other processes."""
        digest = key_digest(token)
        self._cache.deny("session", digest)
        self._cache.forget_session(digest)
        self.changes.fire(Revocation(None, None, "session", digest))  # its open streams

        async def write(conn: AsyncConnection) -> None:
            user_id = await conn.scalar(
                delete(Session).where(Session.digest == digest).returning(Session.user_id)
            )
            await conn.execute(delete(WsTicket).where(WsTicket.session_digest == digest))
            if user_id is not None:
                await self.changes.record(conn, "session", user_id, digest)

        await self.changes.write_revocation("session", digest, "ending a session", write)

    async def mint_ticket(self, principal: Principal) -> str:
        """A single-use /ws credential valid for `ticket_ttl_s` (users only, not anonymous)."""
        if principal.user_id is None:
            raise ValueError("anonymous callers need no ticket")
        ticket = secrets.token_urlsafe(32)
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(WsTicket).values(
                    digest=key_digest(ticket),
                    user_id=principal.user_id,
                    key_id=principal.key_id,
                    expires_at=_now() + self._ticket_ttl,
                    session_digest=principal.session_id,
                )
            )
        return ticket

    async def redeem_ticket(self, ticket: str) -> Principal | None:
        """The principal the ticket was minted for, once; None if unknown, used or expired
        (or its key revoked, its session ended or its user disabled since)."""
        if not _TOKEN.fullmatch(ticket):
            return None
        async with self._writer.begin() as conn:
            row = (
                await conn.execute(
                    delete(WsTicket)
                    .where(WsTicket.digest == key_digest(ticket))
                    .returning(
                        WsTicket.user_id,
                        WsTicket.key_id,
                        WsTicket.expires_at,
                        WsTicket.session_digest,
                    )
                )
            ).first()
        if row is None or row.expires_at <= _now():
            return None
        async with self._engine.connect() as conn:
            user = (await conn.execute(select(*_USER).where(User.id == row.user_id))).first()
            if row.key_id is not None:
                query = select(ApiKey.revoked_at.is_(None)).where(ApiKey.key_id == row.key_id)
            else:  # minted under a session: it must still be there
                live = (Session.digest == row.session_digest) & (Session.expires_at > _now())
                query = select(Session.user_id.is_not(None)).where(live)
            valid = bool(await conn.scalar(query))
        if user is None or user.disabled or not valid:
            return None
        session = row.key_id is None
        principal = principal_of(user, row.key_id, session, row.session_digest)
        return None if self._cache.refuses(principal, row.session_digest) else principal
