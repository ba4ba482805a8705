"""Accounts: the one object the API and the CLI use for users, API keys, sessions, WebSocket
tickets and the audit trail.

Credentials are resolved from an in-memory cache (digest -> Principal) so the request hot path
does not touch the database; `last_used_at` is written in batches. Changes that must reach the
caches of every process (key revoked, user disabled, tier changed, session ended) are appended
to `account_changes`, which `watch_revocations` polls.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from quantsaas.accounts import passwords
from quantsaas.accounts.audit import prune_events, read_events, write_event
from quantsaas.accounts.cache import CredentialCache
from quantsaas.accounts.changes import ChangeFeed
from quantsaas.accounts.keys import digests_match, generate_key, key_digest, parse_key
from quantsaas.accounts.models import AccountChange, ApiKey, Session, User, WsTicket
from quantsaas.accounts.sessions import USER_COLUMNS as _USER
from quantsaas.accounts.sessions import Sessions
from quantsaas.accounts.store import IMMEDIATE, make_engine, migrate, safe_url
from quantsaas.accounts.tiers import Tier
from quantsaas.accounts.trust import LoginTrust, touch_state
from quantsaas.accounts.views import (
    AuditView,
    KeyView,
    Principal,
    Revocation,
    UserView,
    key_view,
    lookup_email,
    normalise_email,
    principal_of,
    user_view,
)
from quantsaas.errors import (
    AccountNotFound,
    EmailTaken,
    InvalidEmail,
    KeyLimitReached,
    StorageError,
    UnknownTier,
)

__all__ = [
    "Accounts",
    "AuditView",
    "KeyView",
    "Principal",
    "Revocation",
    "UserView",
    "normalise_email",
]

log = logging.getLogger("quantsaas.accounts")
ADMIN_EMAIL = "admin@localhost"
_PURGE_EVERY_S = 60.0
_PROBE_TIMEOUT_S = 5.0
_MIN_FREE = 16 << 20
"""Free bytes a SQLite accounts database needs to count as writable (sessions, audit rows)."""
_CHANGES_KEPT = timedelta(days=1)


def _now() -> datetime:
    return datetime.now(UTC)


class Accounts(Sessions):
    """Users, keys, sessions, tickets and audit on one database (SQLite or PostgreSQL)."""

    database_errors: tuple[type[Exception], ...] = (SQLAlchemyError,)
    """What a call raises when the database is unreachable or refuses: callers that must
    not import SQLAlchemy themselves (the API, which opens accounts after it listens) catch
    these."""

    def __init__(
        self,
        engine: AsyncEngine,
        tiers: Mapping[str, Tier],
        *,
        session_ttl_s: float,
        ticket_ttl_s: float,
        poll_s: float,
        usage_flush_s: float,
    ) -> None:
        self.tiers = tiers
        self._engine = engine
        self._writer = engine.execution_options(**IMMEDIATE)
        self._session_ttl = timedelta(seconds=session_ttl_s)
        self._ticket_ttl = timedelta(seconds=ticket_ttl_s)
        self._poll_s = poll_s
        self._usage_flush_s = usage_flush_s
        self._cache = CredentialCache()
        self._used: dict[str, float] = {}  # key_id -> last use (epoch s), not yet written
        self.changes = ChangeFeed(engine, self._writer, self._cache)
        self._dummy_hash: str | None = None
        self._flushed_at = time.monotonic()
        self._purged_at = 0.0
        self.trust: LoginTrust  # set by open(): device cookies, known addresses (trust.py)
        self._audit_kept: timedelta | None = None  # audit rows older than this are pruned

    @classmethod
    async def open(
        cls,
        url: str,
        tiers: Mapping[str, Tier],
        *,
        session_ttl_s: float = 86400.0 * 7,
        ticket_ttl_s: float = 30.0,
        poll_s: float = 1.0,
        usage_flush_s: float = 5.0,
        audit_retention_days: float = 0.0,
    ) -> Accounts:
        """Connect and migrate to the newest schema; StorageError if the database fails.
        `audit_retention_days`: audit rows older than this are pruned (0 keeps them all)."""
        engine = make_engine(url)
        try:
            await migrate(engine)
            accounts = cls(
                engine,
                tiers,
                session_ttl_s=session_ttl_s,
                ticket_ttl_s=ticket_ttl_s,
                poll_s=poll_s,
                usage_flush_s=usage_flush_s,
            )
            await accounts.changes.start()
            if audit_retention_days > 0:
                accounts._audit_kept = timedelta(days=audit_retention_days)
            accounts.trust = await LoginTrust.open(engine, accounts._writer)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StorageError(f"accounts database {safe_url(url)}: {exc}") from exc
        return accounts

    async def close(self) -> None:
        with suppress(SQLAlchemyError, OSError):
            await self.flush_usage()
        await self._engine.dispose()

    async def ping(self) -> bool:
        """Does the database answer? (for /readyz)"""
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def writable(self) -> bool:
        """Can accounts be written (for /readyz)? No revocation waits to be written, a write
        transaction commits, and a SQLite file's filesystem has `_MIN_FREE` bytes left."""
        if self.changes.unwritten:
            return False
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                await touch_state(self._writer, "readyz")
        except (SQLAlchemyError, OSError, TimeoutError):
            return False
        database = self._engine.url.database
        if self._engine.dialect.name == "sqlite" and database and database != ":memory:":
            return shutil.disk_usage(Path(database).parent).free >= _MIN_FREE
        return True

    # -- users --------------------------------------------------------------------------------

    def _tier(self, name: str) -> Tier:
        tier = self.tiers.get(name)
        if tier is None:
            raise UnknownTier(f"unknown tier {name!r}; tiers: {', '.join(self.tiers)}")
        return tier

    async def add_user(
        self, email: str, password: str, tier: str = "free", is_admin: bool = False
    ) -> UserView:
        email = normalise_email(email)
        self._tier(tier)
        passwords.check_password(password)
        hashed = await asyncio.to_thread(passwords.hash_password, password)
        now = _now()
        values: dict[str, Any] = {
            "email": email,
            "password_hash": hashed,
            "tier": tier,
            "is_admin": is_admin,
            "disabled": False,
            "created_at": now,
            "password_changed_at": now,
        }
        try:
            async with self._writer.begin() as conn:
                user_id = await conn.scalar(insert(User).values(**values).returning(User.id))
        except IntegrityError:
            raise EmailTaken(f"a user {email} exists already") from None
        return UserView(cast(int, user_id), email, tier, is_admin, False, now)

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(
                passwords.hash_password, secrets.token_urlsafe(16)
            )
        return self._dummy_hash

    async def authenticate(self, email: str, password: str) -> UserView | None:
        """The user if the password is right and the user enabled; the same work otherwise."""
        try:
            email = lookup_email(email)
        except InvalidEmail:
            email = ""
        async with self._engine.connect() as conn:
            user = (await conn.execute(select(User).where(User.email == email))).first()
        if user is None:
            await asyncio.to_thread(passwords.verify_password, password, await self._dummy())
            return None
        ok, new_hash = await asyncio.to_thread(
            passwords.verify_password, password, user.password_hash
        )
        if not ok or user.disabled:
            return None
        if new_hash is not None:  # the hasher's parameters were raised: upgrade on login
            async with self._writer.begin() as conn:
                await conn.execute(
                    update(User).where(User.id == user.id).values(password_hash=new_hash)
                )
        return user_view(user)

    async def get_user(self, user_id: int) -> UserView | None:
        async with self._engine.connect() as conn:
            user = (await conn.execute(select(User).where(User.id == user_id))).first()
        return None if user is None else user_view(user)

    async def find_user(self, email: str) -> UserView:
        """The user with this email; AccountNotFound if none (InvalidEmail if not an address)."""
        email = lookup_email(email)
        async with self._engine.connect() as conn:
            user = (await conn.execute(select(User).where(User.email == email))).first()
        if user is None:
            raise AccountNotFound(f"no user {email}")
        return user_view(user)

    async def list_users(self) -> list[UserView]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(User).order_by(User.id))).all()
        return [user_view(row) for row in rows]

    async def set_disabled(self, email: str, disabled: bool) -> UserView:
        """Disable (ends sessions, tickets and cached credentials; fires revocations) or enable."""
        user = await self.find_user(email)
        if not disabled:
            self._cache.allow("user", user.id)
            self.changes.forget_unwritten("user", user.id)
            async with self._writer.begin() as conn:
                await conn.execute(update(User).where(User.id == user.id).values(disabled=False))
            return await self.find_user(email)
        self._cache.deny("user", user.id)  # refused here at once, even if the write fails
        self._cache.forget_user(user.id)
        self.changes.fire(Revocation(None, user.id))

        async def write(conn: AsyncConnection) -> None:
            await conn.execute(update(User).where(User.id == user.id).values(disabled=True))
            await conn.execute(delete(Session).where(Session.user_id == user.id))
            await conn.execute(delete(WsTicket).where(WsTicket.user_id == user.id))
            await self.changes.record(conn, "user", user.id)

        await self.changes.write_revocation("user", user.id, f"disabling {user.email}", write)
        return await self.find_user(email)

    async def set_tier(self, email: str, tier: str) -> UserView:
        self._tier(tier)
        user = await self.find_user(email)
        async with self._writer.begin() as conn:
            await conn.execute(update(User).where(User.id == user.id).values(tier=tier))
            await self.changes.record(conn, "tier", user.id, tier)
        self._cache.forget_user(user.id)
        self.changes.fire(Revocation(None, user.id, "tier"))  # streams restart under the new one
        return await self.find_user(email)

    async def change_password(self, user_id: int, current: str, new: str) -> bool:
        """A new password if `current` is right (False if not). Every session and ticket of
        the user ends, in every process; API keys stay valid."""
        async with self._engine.connect() as conn:
            user = (await conn.execute(select(User).where(User.id == user_id))).first()
        if user is None or user.disabled:
            return False
        ok, _ = await asyncio.to_thread(passwords.verify_password, current, user.password_hash)
        if not ok:
            return False
        hashed = await asyncio.to_thread(passwords.hash_password, new)  # WeakPassword
        async with self._writer.begin() as conn:
            changed = {"password_hash": hashed, "password_changed_at": _now()}
            await conn.execute(update(User).where(User.id == user_id).values(**changed))
            await conn.execute(delete(Session).where(Session.user_id == user_id))
            await conn.execute(delete(WsTicket).where(WsTicket.user_id == user_id))
            await self.changes.record(conn, "password", user_id)
        self._cache.forget_user(user_id)
        self.changes.fire(Revocation(None, user_id, "password"))  # streams of every session
        return True

    # -- API keys -----------------------------------------------------------------------------

    async def create_key(self, user_id: int, name: str) -> tuple[str, KeyView]:
        """A new key (its full text is returned only here); KeyLimitReached past the tier's."""
        name = name.strip()[:100] or "default"
        key_text, key_id = generate_key()
        now = _now()
        async with self._writer.begin() as conn:
            user = (
                await conn.execute(
                    select(User.tier, User.disabled).where(User.id == user_id).with_for_update()
                )
            ).first()
            if user is None or user.disabled:
                raise AccountNotFound(f"no user {user_id}")
            allowed = self._tier(user.tier).api_keys
            live = await conn.scalar(
                select(func.count())
                .select_from(ApiKey)
                .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
            )
            if (live or 0) >= allowed:
                raise KeyLimitReached(f"tier {user.tier} allows {allowed} live API key(s)")
            await conn.execute(
                insert(ApiKey).values(
                    key_id=key_id,
                    user_id=user_id,
                    name=name,
                    digest=key_digest(key_text),
                    created_at=now,
                )
            )
        return key_text, KeyView(key_id, user_id, name, now, None, None)

    async def list_keys(self, user_id: int) -> list[KeyView]:
        """Every key of the user, revoked ones too, oldest first."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(ApiKey)
                    .where(ApiKey.user_id == user_id)
                    .order_by(ApiKey.created_at, ApiKey.key_id)
                )
            ).all()
        return [key_view(row) for row in rows]

    async def revoke_key(self, key_id: str, user_id: int | None) -> KeyView:
        """Revoke a key of `user_id` (None: any user's, for admins); AccountNotFound when it is
        not theirs (the same answer as for no key: no existence oracle)."""
        query = select(ApiKey).where(ApiKey.key_id == key_id)
        if user_id is not None:
            query = query.where(ApiKey.user_id == user_id)
        async with self._engine.connect() as conn:
            key = (await conn.execute(query)).first()
        if key is None:
            raise AccountNotFound(f"no API key {key_id}")
        if key.revoked_at is not None:
            return key_view(key)
        now = _now()
        self._cache.deny("key", key_id)  # refused here at once, even if the write fails
        self._cache.forget_key(key_id)
        self.changes.fire(Revocation(key_id, key.user_id))

        async def write(conn: AsyncConnection) -> None:
            live = (ApiKey.key_id == key_id) & ApiKey.revoked_at.is_(None)
            await conn.execute(update(ApiKey).where(live).values(revoked_at=now))
            await self.changes.record(conn, "key", key.user_id, key_id)

        await self.changes.write_revocation("key", key_id, f"revoking key {key_id}", write)
        return KeyView(key.key_id, key.user_id, key.name, key.created_at, key.last_used_at, now)

    async def resolve_key(self, text: str) -> Principal | None:
        """Who holds this API key (None: malformed, unknown, revoked or user disabled).
        Cached: no database access after the first success."""
        key_id = parse_key(text)
        if key_id is None:
            return None
        digest = key_digest(text)
        principal = self._cache.keys.get(digest)
        if principal is not None:
            if self._cache.refuses(principal):
                return None
            self._used[key_id] = time.time()
            return principal
        generation = self._cache.generation
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(ApiKey.digest, ApiKey.revoked_at, *_USER)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.key_id == key_id)
                )
            ).first()
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        if not digests_match(row.digest, digest):
            return None
        principal = principal_of(row, key_id)
        if self._cache.refuses(principal):
            return None
        self._cache.put_key(digest, principal, generation)
        self._used[key_id] = time.time()
        return principal

    async def flush_usage(self) -> None:
        """Write the pending `last_used_at` times (one batched UPDATE)."""
        self._flushed_at = time.monotonic()
        if not self._used:
            return
        used, self._used = self._used, {}
        table = cast(Table, ApiKey.__table__)
        statement = (
            table.update()
            .where(table.c.key_id == bindparam("kid"))
            .values(last_used_at=bindparam("used"))
        )
        rows = [{"kid": k, "used": datetime.fromtimestamp(t, UTC)} for k, t in used.items()]
        try:
            async with self._writer.begin() as conn:
                await conn.execute(statement, rows)
        except BaseException:
            for key_id, at in used.items():  # keep them for the next try
                self._used[key_id] = max(at, self._used.get(key_id, 0.0))
            raise

    # -- revocations --------------------------------------------------------------------------

    def on_revoked(self, callback: Callable[[Revocation], None]) -> None:
        """Call `callback` whenever a key is revoked or a user disabled (in any process)."""
        self.changes.on_revoked(callback)

    async def poll_changes(self) -> int:
        """Apply the changes other processes made since the last poll; how many were new.
        Also flushes `last_used_at` and purges expired rows when they are due."""
        await self.changes.retry()
        applied = await self.changes.poll()
        if time.monotonic() - self._flushed_at >= self._usage_flush_s:
            await self.flush_usage()
        if time.monotonic() - self._purged_at >= _PURGE_EVERY_S:
            await self.purge()
        return applied

    async def purge(self) -> None:
        """Delete expired sessions and tickets (also from the cache), and change records
        older than a day."""
        self._purged_at = time.monotonic()
        now = _now()
        self._cache.prune(time.time())
        async with self._writer.begin() as conn:
            await conn.execute(delete(Session).where(Session.expires_at <= now))
            await conn.execute(delete(WsTicket).where(WsTicket.expires_at <= now))
            await conn.execute(delete(AccountChange).where(AccountChange.at < now - _CHANGES_KEPT))
        await self.trust.prune()
        if self._audit_kept is not None:
            await prune_events(self._writer, self._audit_kept)

    async def watch_revocations(self) -> None:
        """Run forever: every `poll_s`, pick up what other processes revoked (see poll_changes)."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.poll_changes()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("accounts: polling changes failed: %s", exc)

    # -- audit --------------------------------------------------------------------------------

    async def audit(
        self,
        event: str,
        *,
        user_id: int | None = None,
        key_id: str | None = None,
        ip: str | None = None,
        detail: str = "",
        log: bool = True,
    ) -> None:
        """A row of the audit table and a line of the `quantsaas.audit` logger."""
        await write_event(self._writer, event, user_id, key_id, ip, detail, log)

    async def audit_events(self, limit: int = 100) -> list[AuditView]:
        """The newest `limit` events, newest first."""
        return await read_events(self._engine, limit)

    async def bootstrap_admin(self) -> tuple[str, str] | None:
        """On an empty database: create admin@localhost with a random password and return
        (email, password), shown once; None when any user exists."""
        async with self._engine.connect() as conn:
            if await conn.scalar(select(func.count()).select_from(User)):
                return None
        tier = (
            "enterprise"
            if "enterprise" in self.tiers
            else max(self.tiers.values(), key=lambda t: t.requests).name
        )
        password = secrets.token_urlsafe(18)
        try:
            await self.add_user(ADMIN_EMAIL, password, tier=tier, is_admin=True)
        except EmailTaken:  # another process won the race
            return None
        return ADMIN_EMAIL, password
