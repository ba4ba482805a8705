"""The credential cache of one process: digest -> Principal, so resolving a known API key or
session costs no database round trip. Every invalidation bumps `generation`; a lookup that
raced with one (read the row before it, finishes after) must not store its stale answer.

It also holds what this process refuses whatever the database says: keys, users and sessions
revoked here (`deny`), so a revocation takes effect at once even when writing it fails (a full
disk); the write is retried (accounts/changes.py)."""

from __future__ import annotations

from quantsaas.accounts.views import Principal


class CredentialCache:
    def __init__(self) -> None:
        self.keys: dict[str, Principal] = {}  # API key digest -> principal
        self.sessions: dict[str, tuple[Principal, float]] = {}  # digest -> (principal, expiry)
        self.generation = 0
        self.denied: set[tuple[str, object]] = set()  # ("key", id), ("user", id), ("session", d)

    def deny(self, kind: str, subject: object) -> None:
        """Refuse a key id, user id or session digest from now on (until `allow`)."""
        self.denied.add((kind, subject))

    def allow(self, kind: str, subject: object) -> None:
        self.denied.discard((kind, subject))

    def refuses(self, principal: Principal, session: str | None = None) -> bool:
        denied = self.denied
        return bool(denied) and (
            ("user", principal.user_id) in denied
            or (principal.key_id is not None and ("key", principal.key_id) in denied)
            or (session is not None and ("session", session) in denied)
        )

    def put_key(self, digest: str, principal: Principal, generation: int) -> None:
        if generation == self.generation:
            self.keys[digest] = principal

    def session(self, digest: str, now: float) -> Principal | None:
        """The cached principal of a session that has not expired at `now` (epoch s)."""
        cached = self.sessions.get(digest)
        if cached is None or now < cached[1]:
            return None if cached is None else cached[0]
        del self.sessions[digest]
        return None

    def put_session(
        self, digest: str, principal: Principal, expires: float, generation: int
    ) -> None:
        if generation == self.generation:
            self.sessions[digest] = (principal, expires)

    def forget_key(self, key_id: str) -> None:
        self.generation += 1
        for digest in [d for d, p in self.keys.items() if p.key_id == key_id]:
            del self.keys[digest]

    def forget_user(self, user_id: int) -> None:
        self.generation += 1
        for digest in [d for d, p in self.keys.items() if p.user_id == user_id]:
            del self.keys[digest]
        for digest in [d for d, (p, _) in self.sessions.items() if p.user_id == user_id]:
            del self.sessions[digest]

    def forget_session(self, digest: str) -> None:
        self.generation += 1
        self.sessions.pop(digest, None)

    def prune(self, now: float) -> None:
        """Drop sessions expired at `now` (epoch s)."""
        self.sessions = {d: entry for d, entry in self.sessions.items() if entry[1] > now}
