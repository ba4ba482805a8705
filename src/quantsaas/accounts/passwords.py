"""Password hashing: argon2id through pwdlib (`PasswordHash.recommended()`: 64 MiB, t=3, p=4).

Hashing costs ~0.1 s of CPU and 64 MiB: async code calls these through `asyncio.to_thread`,
and login must be rate limited. No composition rules (ASVS V6): only a length range.
"""

from __future__ import annotations

from pwdlib import PasswordHash
from pwdlib.exceptions import PwdlibError

from quantsaas.errors import WeakPassword

MIN_LENGTH = 8
MAX_LENGTH = 128

HASHER = PasswordHash.recommended()
"""The hasher used; tests may replace it with a cheaper argon2 (module attribute)."""


def check_password(password: str) -> None:
    """WeakPassword unless MIN_LENGTH <= len(password) <= MAX_LENGTH."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id hash of an acceptable password (WeakPassword otherwise)."""
    check_password(password)
    return HASHER.hash(password)


def verify_password(password: str, hashed: str) -> tuple[bool, str | None]:
    """(matches, a new hash when the stored one uses outdated parameters, else None)."""
    if len(password) > MAX_LENGTH:
        return False, None  # never hash unbounded input
    try:
        return HASHER.verify_and_update(password, hashed)
    except PwdlibError:  # an unknown or corrupt stored hash is a failed login, not a crash
        return False, None
