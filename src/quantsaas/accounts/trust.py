"""What lets the owner of an account in while its login limit holds everyone else back.

A per-account limit on failed logins stops guessing, but anyone can spend it: five wrong
passwords a minute would lock `admin@localhost` out for good. The usual answer (OWASP, "Slow
down online guessing attacks with device cookies") is to apply that limit only to clients the
account has never seen succeed:

- **Device cookies.** A successful login gets a cookie signed with a key every process shares
  (`service_state.device-key`, created once): `d1.<issued s>.<nonce>.<HMAC-SHA256 over the
  account's email, issue time and nonce>`. It proves this browser signed in to this account
  before; it grants nothing else (no session, no data), so it needs no revocation list. It
  expires after `DEVICE_TTL_S`; the caller limits failed passwords per nonce, so a stolen cookie
  only buys a few guesses.
- **Known addresses.** Every address (IPv4, or an IPv6 /64) a user signed in from is kept
  (`login_addresses`, pruned after `ADDRESSES_KEPT`); the right password from there still gets
  in when the account is locked to everyone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from quantsaas.accounts.models import LoginAddress, ServiceState, User
from quantsaas.accounts.views import DEVICE_TTL_S

DEVICE_KEY = "device-key"
ADDRESSES_KEPT = timedelta(days=180)
_COOKIE = re.compile(r"d1\.(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")


def _now() -> datetime:
    return datetime.now(UTC)


async def shared_secret(engine: AsyncEngine, writer: AsyncEngine, name: str) -> bytes:
    """The secret stored under `name` in `service_state`, created (32 random bytes) by the
    first process that asks; processes racing to create it all end with the winner's."""
    async with engine.connect() as conn:
        value = await conn.scalar(select(ServiceState.value).where(ServiceState.name == name))
    if value is None:
        try:
            async with writer.begin() as conn:
                new = {"name": name, "value": secrets.token_hex(32), "updated_at": _now()}
                await conn.execute(insert(ServiceState).values(**new))
        except IntegrityError:
            pass  # another process created it first
        async with engine.connect() as conn:
            value = await conn.scalar(select(ServiceState.value).where(ServiceState.name == name))
    return bytes.fromhex(str(value))


async def touch_state(writer: AsyncEngine, name: str) -> None:
    """Write `service_state.name` (its time): a real write transaction, for readiness probes."""
    async with writer.begin() as conn:
        changed = await conn.execute(
            update(ServiceState).where(ServiceState.name == name).values(updated_at=_now())
        )
        if not changed.rowcount:
            values = {"name": name, "value": "", "updated_at": _now()}
            await conn.execute(insert(ServiceState).values(**values))


class LoginTrust:
    def __init__(self, engine: AsyncEngine, writer: AsyncEngine, device_key: bytes) -> None:
        self._engine = engine
        self._writer = writer
        self._key = device_key

    @classmethod
    async def open(cls, engine: AsyncEngine, writer: AsyncEngine) -> LoginTrust:
        return cls(engine, writer, await shared_secret(engine, writer, DEVICE_KEY))

    def _sign(self, email: str, issued: int, nonce: str) -> str:
        message = f"device|{email}|{issued}|{nonce}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def device_cookie(self, email: str, now: float) -> str:
        """A new device cookie for the (normalised) `email`, issued at `now` (epoch s)."""
        issued, nonce = int(now), secrets.token_urlsafe(16)
        return f"d1.{issued}.{nonce}.{self._sign(email, issued, nonce)}"

    def device_of(self, cookie: str | None, email: str, now: float) -> str | None:
        """The nonce of a valid, unexpired device cookie of `email`; None otherwise."""
        match = _COOKIE.fullmatch(cookie or "")
        if match is None:
            return None
        issued, nonce, signature = int(match[1]), match[2], match[3]
        if not (0 <= now - issued <= DEVICE_TTL_S):
            return None
        if not hmac.compare_digest(signature, self._sign(email, issued, nonce)):
            return None
        return nonce

    async def is_known(self, email: str, address: str) -> bool:
        """Has the user with this (normalised) email signed in from `address` before?"""
        async with self._engine.connect() as conn:
            found = await conn.scalar(
                select(LoginAddress.user_id)
                .join(User, User.id == LoginAddress.user_id)
                .where(User.email == email, LoginAddress.address == address)
            )
        return found is not None

    async def remember(self, user_id: int, address: str) -> None:
        """Record a successful login of `user_id` from `address`."""
        now = _now()
        known = (LoginAddress.user_id == user_id) & (LoginAddress.address == address)
        async with self._writer.begin() as conn:
            changed = await conn.execute(
                update(LoginAddress).where(known).values(last_login_at=now)
            )
            if changed.rowcount:
                return
        try:
            async with self._writer.begin() as conn:
                row = {"user_id": user_id, "address": address[:64], "last_login_at": now}
                await conn.execute(insert(LoginAddress).values(**row))
        except IntegrityError:
            pass  # a login from the same address in another process got there first

    async def prune(self) -> None:
        """Forget addresses not used to sign in for ADDRESSES_KEPT."""
        async with self._writer.begin() as conn:
            await conn.execute(
                delete(LoginAddress).where(LoginAddress.last_login_at < _now() - ADDRESSES_KEPT)
            )
