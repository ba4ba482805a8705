"""Authentication, tier checks and rate limits for every HTTP request and WebSocket handshake.

Credentials, in the order they are looked at:
    X-API-Key: qs_...            programs (REST and the WebSocket handshake)
    Authorization: Bearer qs_... the same key, for clients that only speak Bearer
    cookie qs_session            the dashboard, after POST /api/v1/auth/login
    /ws?ticket=...               browsers' WebSockets: single use, 30 s (POST /api/v1/ws-ticket)
A caller with none is anonymous: only public routes (api/access.py), unless the service runs
with `anonymous_tier` set (the demo command), which gives anonymous callers that tier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quantsaas.accounts.tiers import Tier
from quantsaas.accounts.views import Principal, Revocation
from quantsaas.api.access import DOCS_PATHS, Access, access_for, tier_denial
from quantsaas.api.connections import (
    Connections,
    ConnectionsUnavailable,
    LocalConnections,
    connection_id,
)
from quantsaas.api.login import LoginGate
from quantsaas.api.problems import Problem
from quantsaas.api.ratelimit import (
    Decision,
    Limiter,
    Quota,
    client_bucket,
    limit_headers,
    unavailable_errors,
)
from quantsaas.config import Settings
from quantsaas.errors import UnknownInstrument
from quantsaas.readmodel import resolve

API_KEY_HEADER = "X-API-Key"
SESSION_COOKIE = "qs_session"
LIMIT_DECISION_STATE = "limit_decision"
DENIAL_AUDIT_EVERY_S = 10.0
"""At most one audit row per client and reason this often; the log gets every denial."""

audit_log = logging.getLogger("quantsaas.audit")
if TYPE_CHECKING:  # opened after the server listens (api/app.py): SQLAlchemy loads then
    from quantsaas.accounts.service import Accounts

log = logging.getLogger(__name__)


def client_ip(scope_client: Any) -> str:
    return str(scope_client[0]) if scope_client else "unknown"


def presented_key(headers: Headers) -> str | None:
    key = headers.get(API_KEY_HEADER)
    if key:
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """No Origin (not a browser) or the page's own host, or one listed in `allowed_origins`."""
    if origin is None:
        return True
    if origin.rstrip("/") in allowed:
        return True
    return host is not None and urlsplit(origin).netloc == host


@dataclass
class Guard:
    """Everything a request check needs, built once per app (app.state.guard)."""

    accounts: Accounts
    tiers: Mapping[str, Tier]
    weights: Mapping[str, int]
    limiter: Limiter
    settings: Settings
    sockets: OpenSockets = field(default_factory=lambda: OpenSockets())
    connections: Connections = field(default_factory=LocalConnections)
    """The connection limit across processes (Redis with `--bus redis://`)."""
    denied: Counter[tuple[int, str]] = field(default_factory=Counter)
    """Refusals by (status, code), for /metrics."""
    rate_limited: Counter[str] = field(default_factory=Counter)
    """429s by quota name, for /metrics."""
    _denials: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        settings = self.settings
        self.anonymous: Principal | None = None
        if settings.anonymous_tier is not None:
            self.anonymous = Principal(
                user_id=None, email=None, tier=settings.anonymous_tier, is_admin=False, key_id=None
            )
        self.quotas: dict[str, Quota] = {
            "anonymous": Quota(
                "anonymous", settings.anonymous_requests, settings.anonymous_window_s
            ),
            "login": Quota("login", settings.login_attempts, settings.login_window_s),
        }
        for tier in self.tiers.values():
            self.quotas[tier.name] = Quota(tier.name, tier.requests, tier.window_s)
        self.login = LoginGate(self.accounts, self.limiter)

    def tier_of(self, principal: Principal) -> Tier:
        return self.tiers[principal.tier]

    async def identify(self, connection: HTTPConnection) -> Principal | None:
        """The caller's principal; None when anonymous without an anonymous tier.
        A key that is presented but unknown or revoked is a 401, never anonymous."""
        key = presented_key(connection.headers)
        if key is not None:
            principal = await self.accounts.resolve_key(key)
            if principal is None:
                raise Problem(401, "key-invalid", "unknown or revoked API key")
            return principal
        token = connection.cookies.get(SESSION_COOKIE)  # parsed only without a key
        if token:
            principal = await self.accounts.resolve_session(token)
            if principal is not None:
                return principal
        return self.anonymous

    def rate_key(self, principal: Principal | None, ip: str) -> str:
        if principal is None or principal.user_id is None:
            return f"ip:{client_bucket(ip)}"  # an IPv6 /64 counts as one address
        if principal.key_id is not None:
            return f"key:{principal.key_id}"
        return f"user:{principal.user_id}"

    def quota_for(self, principal: Principal | None, access: Access) -> Quota:
        if access.anonymous_quota == "login" or principal is None:
            return self.quotas[access.anonymous_quota]
        return self.quotas[principal.tier]

    async def deny(
        self,
        status: int,
        code: str,
        detail: str,
        ip: str,
        path: str,
        principal: Principal | None = None,
        headers: Mapping[str, str] | None = None,
        audit: bool = True,
        user_id: int | None = None,
    ) -> Problem:
        """Log (and now and then audit) a refused request; the caller raises the result.
        `user_id`: the account concerned when the caller is anonymous (a locked login)."""
        self.denied[(status, code)] += 1
        who = principal.key_id or principal.email if principal is not None else None
        audit_log.info(
            "denied %s %s: %s", status, path, code, extra={"ip": ip, "who": who, "code": code}
        )
        now = time.monotonic()
        bucket = (client_bucket(ip), code)
        if audit and now - self._denials.get(bucket, float("-inf")) >= DENIAL_AUDIT_EVERY_S:
            self._denials[bucket] = now
            if len(self._denials) > 10_000:
                self._denials.clear()
            try:
                await self.accounts.audit(
                    "request.denied",
                    user_id=principal.user_id if principal is not None else user_id,
                    key_id=principal.key_id if principal is not None else None,
                    ip=ip,
                    detail=f"{status} {code} {path}",
                    log=False,  # logged above, every time
                )
            except self.accounts.database_errors as exc:  # the refusal stands; logged above
                log.warning("audit row not written: %s", exc)
        return Problem(status, code, detail, headers=headers)

    async def charge(
        self, principal: Principal | None, access: Access, ip: str, path: str, cost: int
    ) -> Decision:
        quota = self.quota_for(principal, access)
        try:
            decision = await self.limiter.hit(self.rate_key(principal, ip), quota, cost)
        except unavailable_errors() as exc:
            # without its counters the service cannot keep anyone to a limit: fail closed
            log.warning("rate limiter unavailable: %s", exc)
            raise Problem(
                503, "service-unavailable", "rate limiter unavailable", {"Retry-After": "1"}
            ) from None
        if not decision.allowed:
            self.rate_limited[quota.name] += 1
            raise await self.deny(
                429,
                "rate-limited",
                f"over the {quota.name} limit of {quota.limit} per {quota.window_s:g} s; "
                f"retry in {decision.retry_after_s:.1f} s",
                ip,
                path,
                principal,
                limit_headers(decision),
            )
        return decision


GUARDED = "quantsaas.guarded"
"""Scope key set once guard_request has passed a request (it runs before the body is read,
api/intake.py, and again as the app-wide dependency, which then returns at once)."""


ACCOUNTS_WAIT_S = 10.0
"""How long a request that needs the accounts waits for them to open (at start-up)."""


async def ready_guard(state: Any) -> Guard | None:
    """The app's guard (`state` is app.state); while the accounts are still opening, the first
    moments after start (api/app.py), wait for them, at most ACCOUNTS_WAIT_S. None: they are
    not open (failed, or too slow): the caller fails closed."""
    guard: Guard | None = getattr(state, "guard", None)
    opening: asyncio.Task[None] | None = getattr(state, "accounts_opening", None)
    if guard is None and opening is not None and not opening.done():
        # shielded: a client that goes away must not cancel the opening for everyone
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(opening), ACCOUNTS_WAIT_S)
        guard = getattr(state, "guard", None)
    return guard


async def guard_request(request: Request) -> None:
    """Credentials, tier and rate limit of an HTTP request; raises the Problem refusing it."""
    if request.scope.get(GUARDED):
        return
    route = request.scope.get("route")
    template: str = route.path if route is not None else request.scope["path"]
    access = access_for(template)
    if template in DOCS_PATHS or not access.limited:
        return
    guard = await ready_guard(request.app.state)
    if guard is None:  # the accounts database is not open: fail closed
        raise Problem(503, "service-unavailable", "accounts are not available")
    ip = client_ip(request.client)
    try:
        principal = await guard.identify(request)
    except Problem as problem:
        raise await guard.deny(problem.status, problem.code, problem.detail, ip, template) from None
    except guard.accounts.database_errors as exc:
        log.warning("accounts database unavailable: %s", exc)
        raise Problem(
            503, "service-unavailable", "accounts unavailable", {"Retry-After": "1"}
        ) from None
    request.state.principal = principal
    if (principal is None and not access.public) or (
        access.user and (principal is None or principal.user_id is None)
    ):
        raise await guard.deny(
            401,
            "credentials-required",
            f"send an API key in {API_KEY_HEADER} or Authorization: Bearer",
            ip,
            template,
            audit=access.audit_anonymous,
        )
    if principal is not None and not access.public:
        await _check_tier(guard, request, principal, access, ip, template)
    cost = guard.weights.get(template, 1)
    decision = await guard.charge(principal, access, ip, template, cost)
    request.state.limit_decision = decision
    request.scope[GUARDED] = True


async def _check_tier(
    guard: Guard, request: Request, principal: Principal, access: Access, ip: str, path: str
) -> None:
    if access.admin and not principal.is_admin:
        raise await guard.deny(403, "admin-required", "administrators only", ip, path, principal)
    if principal.session and request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("origin")
        if not origin_allowed(origin, request.headers.get("host"), guard.settings.allowed_origins):
            raise await guard.deny(
                403, "origin-not-allowed", f"origin {origin} not allowed", ip, path, principal
            )
    params = request.path_params
    venue, symbol = params.get("venue"), params.get("symbol")
    named = _named_symbols(request, venue, symbol) if symbol else []
    denial = tier_denial(guard.tier_of(principal), access.family, venue, named)
    if denial is not None:
        raise await guard.deny(403, "tier-required", denial, ip, path, principal)


def _named_symbols(request: Request, venue: str | None, symbol: str) -> list[str]:
    """The canonical symbols a path symbol names (any listed spelling), so the tier is checked
    against what will be served; the text itself when it names nothing served."""
    try:
        instruments = request.app.state.runtime.read_model.instruments()
        return sorted({i.symbol for i in resolve(instruments, symbol, venue)})
    except (UnknownInstrument, AttributeError):
        return [symbol]


async def caller_is_admin(request: Request) -> bool:
    """Is an administrator's key or session on this request? For probes, which run without
    the guard: credentials are looked at only when some are presented."""
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if guard is None or (
        presented_key(request.headers) is None and SESSION_COOKIE not in request.cookies
    ):
        return False
    refused: tuple[type[Exception], ...] = (Problem, *guard.accounts.database_errors)
    try:
        principal = await guard.identify(request)
    except refused:
        return False
    return principal is not None and principal.is_admin


def request_principal(request: Request) -> Principal | None:
    """The principal guard_request found (None: anonymous without an anonymous tier)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


def request_tier(request: Request) -> Tier | None:
    principal = request_principal(request)
    guard: Guard | None = getattr(request.app.state, "guard", None)
    if principal is None or guard is None:
        return None
    return guard.tier_of(principal)


CLOSE_REVOKED = 4001
"""/ws close code: the key was revoked or the user disabled."""
CLOSE_SESSION_ENDED = 4002
"""/ws close code: the dashboard session behind the socket ended (logout, password change)."""
CLOSE_TIER_CHANGED = 4003
"""/ws close code: the user's tier changed; connect again to stream under the new one."""
_CLOSES = {
    "revoked": (CLOSE_REVOKED, "credentials revoked"),
    "session": (CLOSE_SESSION_ENDED, "session ended"),
    "password": (CLOSE_SESSION_ENDED, "session ended: password changed"),
    "tier": (CLOSE_TIER_CHANGED, "tier changed: connect again"),
}


class Revocable(Protocol):
    """An open WebSocket session, as the registry sees it."""

    principal: Principal

    def revoke(self, code: int, reason: str) -> None: ...


def revokes(revocation: Revocation, principal: Principal) -> bool:
    """Must a socket opened by `principal` close for `revocation`?"""
    kind = revocation.kind
    if kind == "session":  # a logout: the sockets of that session (its tickets)
        return revocation.session is not None and principal.session_id == revocation.session
    if principal.user_id is None or principal.user_id != revocation.user_id:
        return revocation.key_id is not None and principal.key_id == revocation.key_id
    if kind == "password":  # every session ends; keys stay valid
        return principal.session
    if kind == "tier":
        return True
    return revocation.key_id is None or principal.key_id == revocation.key_id


class OpenSockets:
    """Open /ws connections by owner (a user, or an IP for anonymous callers): the per-user
    connection limit, and closing sockets at once when their credentials stop being valid
    (key revoked, user disabled, logout, password change) or their tier changes; changes
    made by another process arrive through the accounts change feed (accounts/changes.py)."""

    def __init__(self) -> None:
        self._by_owner: dict[str, set[Revocable]] = {}

    @staticmethod
    def owner(principal: Principal, ip: str) -> str:
        if principal.user_id is None:
            return f"ip:{client_bucket(ip)}"
        return f"user:{principal.user_id}"

    def count(self, principal: Principal, ip: str = "") -> int:
        return len(self._by_owner.get(self.owner(principal, ip), ()))

    def add(self, owner: str, session: Revocable) -> None:
        self._by_owner.setdefault(owner, set()).add(session)

    def discard(self, owner: str, session: Revocable) -> None:
        sessions = self._by_owner.get(owner)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self._by_owner[owner]

    def held(self) -> list[tuple[str, str]]:
        """(owner, connection id) of every open socket (kept alive in the shared count)."""
        return [
            (owner, connection_id(session))
            for owner, sessions in self._by_owner.items()
            for session in sessions
        ]

    def by_caller(self) -> dict[str, int]:
        """Open connections of signed-in users and of anonymous callers (by IP)."""
        counts = {"user": 0, "anonymous": 0}
        for owner, sessions in self._by_owner.items():
            counts["anonymous" if owner.startswith("ip:") else "user"] += len(sessions)
        return counts

    def revoke(self, revocation: Revocation) -> None:
        code, reason = _CLOSES.get(revocation.kind, _CLOSES["revoked"])
        for sessions in list(self._by_owner.values()):
            for session in list(sessions):
                if revokes(revocation, session.principal):
                    session.revoke(code, reason)


WS_ROUTE = Access(family=None)


async def authenticate_websocket(
    guard: Guard, headers: Headers, ticket: str | None, ip: str
) -> Principal:
    """The principal of a /ws handshake, or a Problem (raised) telling why it is refused."""
    if not origin_allowed(
        headers.get("origin"), headers.get("host"), guard.settings.allowed_origins
    ):
        raise await guard.deny(
            403, "origin-not-allowed", f"origin {headers.get('origin')} not allowed", ip, "/ws"
        )
    principal: Principal | None
    key = presented_key(headers)
    if key is not None:
        principal = await guard.accounts.resolve_key(key)
        if principal is None:
            raise await guard.deny(401, "key-invalid", "unknown or revoked API key", ip, "/ws")
    elif ticket:
        principal = await guard.accounts.redeem_ticket(ticket)
        if principal is None:
            raise await guard.deny(
                401, "ticket-invalid", "unknown, used or expired ticket", ip, "/ws"
            )
    else:
        principal = guard.anonymous
        if principal is None:
            raise await guard.deny(
                401,
                "credentials-required",
                f"send {API_KEY_HEADER} (programs) or ?ticket= from POST /api/v1/ws-ticket",
                ip,
                "/ws",
            )
    await guard.charge(principal, WS_ROUTE, ip, "/ws", 1)
    return principal


async def admit_websocket(guard: Guard, principal: Principal, ip: str, session: Revocable) -> str:
    """Register an authenticated session under its owner, or refuse it (429) when the tier's
    connection limit is reached: first this process's count (no await between it and the
    registration), then the deployment's (`connections.py`, atomic in Redis)."""
    tier = guard.tier_of(principal)
    owner = OpenSockets.owner(principal, ip)
    full = guard.sockets.count(principal, ip) >= tier.ws_connections
    if not full:  # this process has room: does the whole deployment (shared count)?
        try:
            full = not await guard.connections.admit(
                owner, connection_id(session), tier.ws_connections
            )
        except ConnectionsUnavailable as exc:
            raise Problem(503, "service-unavailable", str(exc)) from None
    if full:
        raise await guard.deny(
            429,
            "too-many-connections",
            f"the {tier.name} tier allows {tier.ws_connections} open connection(s)",
            ip,
            "/ws",
            principal,
        )
    guard.sockets.add(owner, session)
    return owner


async def release_websocket(guard: Guard, owner: str, session: Revocable) -> None:
    guard.sockets.discard(owner, session)
    await guard.connections.release(owner, connection_id(session))


_POLICY_HEADERS: dict[Quota, list[tuple[bytes, bytes]]] = {}


def raw_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """limit_headers(decision) for an allowed request, as raw ASGI headers; the parts that
    only depend on the quota are encoded once per quota (this runs on every request)."""
    quota = decision.quota
    fixed = _POLICY_HEADERS.get(quota)
    if fixed is None:
        every = limit_headers(decision)
        fixed = _POLICY_HEADERS[quota] = [
            (b"ratelimit-policy", every["RateLimit-Policy"].encode()),
            (b"x-ratelimit-limit", every["X-RateLimit-Limit"].encode()),
        ]
    remaining = max(0, decision.remaining)
    reset = max(0, math.ceil(decision.reset_s))
    return [
        *fixed,
        (b"ratelimit", b'"%s";r=%d;t=%d' % (quota.name.encode(), remaining, reset)),
        (b"x-ratelimit-remaining", b"%d" % remaining),
        (b"x-ratelimit-reset", b"%d" % reset),
    ]


class LimitHeadersMiddleware:
    """Adds the rate-limit headers guard_request computed to whatever the route answered,
    errors included (FastAPI drops a dependency's headers when an exception handler answers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] != 429:
                # a 429 carries the headers of the quota that refused it
                decision = scope.get("state", {}).get(LIMIT_DECISION_STATE)
                if decision is not None:
                    message["headers"] = [*message.get("headers", ()), *raw_headers(decision)]
            await send(message)

        await self.app(scope, receive, send_with_limits)
