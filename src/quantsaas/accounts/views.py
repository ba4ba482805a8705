"""Values the accounts service hands out: who is calling, and read-only views of rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quantsaas.accounts.emails import lookup_email, normalise_email

__all__ = ["lookup_email", "normalise_email"]

DEVICE_TTL_S = 365 * 86_400.0
"""How long a device cookie (accounts/trust.py) lets its browser past a lock-out; the API
sets the cookie's max-age from it."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by API key or session) or an anonymous caller."""

    user_id: int | None
    email: str | None
    tier: str
    is_admin: bool
    key_id: str | None
    session: bool = False
    session_id: str | None = field(default=None, compare=False)
    """The digest of the dashboard session behind this principal (a cookie, or a /ws ticket
    minted under it): what a logout ends. Bookkeeping, not identity: not compared."""

    @classmethod
    def anonymous(cls, tier: str) -> Principal:
        return cls(user_id=None, email=None, tier=tier, is_admin=False, key_id=None)


@dataclass(frozen=True)
class Revocation:
    """Credentials that open streams must stop using, by `kind`:

    - `revoked`: a key (key_id set) or a whole user (key_id None: disabled);
    - `session`: one dashboard session ended (logout): `session` is its digest;
    - `password`: the user's password changed: every session of theirs ended (keys stay);
    - `tier`: the user's tier changed: their streams must start again under the new one.
    """

    key_id: str | None
    user_id: int | None
    kind: str = "revoked"
    session: str | None = None


@dataclass(frozen=True)
class UserView:
    id: int
    email: str
    tier: str
    is_admin: bool
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class KeyView:
    key_id: str
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    event: str
    user_id: int | None
    key_id: str | None
    ip: str | None
    detail: str


def user_view(row: Any) -> UserView:
    """The view of a `users` row (any object with its column attributes)."""
    return UserView(row.id, row.email, row.tier, row.is_admin, row.disabled, row.created_at)


def key_view(row: Any) -> KeyView:
    return KeyView(
        row.key_id, row.user_id, row.name, row.created_at, row.last_used_at, row.revoked_at
    )


def principal_of(
    user: Any, key_id: str | None, session: bool = False, session_id: str | None = None
) -> Principal:
    """The principal of a `users` row, authenticated by `key_id` or a session."""
    return Principal(user.id, user.email, user.tier, user.is_admin, key_id, session, session_id)
