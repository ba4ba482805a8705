"""API key text: `qs_<key_id>_<secret>`; only a SHA-256 digest of it is stored.

key_id is 12 lowercase hex characters (the lookup key, safe to log and show); the secret is
32 random bytes in unpadded urlsafe base64 (43 characters, which may contain `_` and `-`, so a
key is parsed by position, never by splitting on `_`). 256 random bits make a fast hash enough:
argon2 is for passwords, which are guessable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

PREFIX = "qs_"
KEY_ID_LEN = 12
SECRET_LEN = 43  # base64 of 32 bytes without padding
_KEY = re.compile(rf"qs_([0-9a-f]{{{KEY_ID_LEN}}})_([A-Za-z0-9_-]{{{SECRET_LEN}}})")


def generate_key() -> tuple[str, str]:
    """A new random key: (full key text, key_id)."""
    key_id = secrets.token_hex(KEY_ID_LEN // 2)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
    return f"{PREFIX}{key_id}_{secret}", key_id


def parse_key(text: str) -> str | None:
    """The key_id of a well-formed key text, else None."""
    match = _KEY.fullmatch(text)
    return match.group(1) if match else None


def key_digest(text: str) -> str:
    """SHA-256 hex of the full key (or session token / ticket) text: what is stored."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def digests_match(a: str, b: str) -> bool:
    """Compare two digests in time independent of where they differ."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))
