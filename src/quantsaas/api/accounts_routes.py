"""Accounts over HTTP, for the dashboard and for programs: signup, login, keys, tickets, limits."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from quantsaas.accounts.passwords import MAX_LENGTH, MIN_LENGTH
from quantsaas.accounts.views import DEVICE_TTL_S, Principal
from quantsaas.api.auth import SESSION_COOKIE, Guard, client_ip, request_principal
from quantsaas.api.login import DEVICE_COOKIE
from quantsaas.api.problems import PROBLEM_JSON, Problem
from quantsaas.errors import (
    AccountNotFound,
    EmailTaken,
    InvalidEmail,
    KeyLimitReached,
    RevocationPending,
    WeakPassword,
    quote,
)
from quantsaas.logs import printable
from quantsaas.model import now_ns

router = APIRouter(tags=["accounts"])


def _problem_doc(*statuses: int) -> dict[int | str, dict[str, Any]]:
    schema = {"schema": {"$ref": "#/components/schemas/Problem"}}
    return {
        status: {"description": "Problem", "content": {PROBLEM_JSON: schema}} for status in statuses
    }


Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=254,
        json_schema_extra={"format": "email"},
        description="Checked by the service (accounts/emails.py): a pattern here would mean "
        "one thing to Python's regular expressions and another to pydantic's",
    ),
]


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]


class NewAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    password: Annotated[
        str,
        Field(
            min_length=MIN_LENGTH,
            max_length=MAX_LENGTH,
            description="Any characters; no composition rules (ASVS V6)",
        ),
    ]


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=64)] = "default"


class User(BaseModel):
    """Read from accounts.views.UserView (never its password hash: not a field here)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    tier: str
    is_admin: bool
    created_at: datetime


class ApiKey(BaseModel):
    """Read from accounts.views.KeyView (never its digest: not a field here)."""

    model_config = ConfigDict(from_attributes=True)
    key_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class CreatedKey(ApiKey):
    key: str = Field(description="The API key itself. Shown this once; store it now.")


class KeyList(BaseModel):
    data: list[ApiKey]


class Account(BaseModel):
    user: User
    authenticated_by: str = Field(description="`key` or `session`")
    key_id: str | None


class Ticket(BaseModel):
    ticket: str
    expires_in_s: float


class AuditEvent(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    event: str
    user_id: int | None
    key_id: str | None
    ip: str | None
    detail: str


class AuditList(BaseModel):
    data: list[AuditEvent]


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def _user_principal(request: Request) -> Principal:
    principal = request_principal(request)
    if principal is None or principal.user_id is None:
        raise Problem(401, "credentials-required", "sign in or send an API key")
    return principal


def _set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/",
    )


@router.post(
    "/api/v1/auth/signup",
    status_code=201,
    summary="Create an account (free tier) and sign in",
    responses=_problem_doc(409, 422, 429),
)
async def signup(body: NewAccount, request: Request, response: Response) -> User:
    guard = _guard(request)
    if not guard.settings.signup_enabled:
        raise Problem(403, "signup-closed", "signup is closed on this service")
    try:
        user = await guard.accounts.add_user(
            body.email, body.password, tier=guard.settings.signup_tier
        )
    except EmailTaken:
        raise Problem(409, "email-taken", "that email is already registered") from None
    except (WeakPassword, InvalidEmail) as exc:
        raise Problem(422, "validation-error", str(exc)) from None
    ip = client_ip(request.client)
    await guard.accounts.audit("user.signup", user_id=user.id, ip=ip)
    token = await guard.accounts.create_session(user.id)
    _set_session_cookie(request, response, token, int(guard.settings.session_ttl_s))
    return User.model_validate(user)


@router.post(
    "/api/v1/auth/login",
    summary="Sign in: sets an HttpOnly session cookie (and a device cookie, api/login.py)",
    responses=_problem_doc(401, 422, 429),
)
async def login(body: Credentials, request: Request, response: Response) -> User:
    guard = _guard(request)
    ip = client_ip(request.client)
    try:
        attempt = await guard.login.admit(body.email, ip, request.cookies.get(DEVICE_COOKIE))
    except Problem as refused:
        account = await _user_id(guard, body.email)
        raise await guard.deny(
            refused.status,
            refused.code,
            refused.detail,
            ip,
            "/api/v1/auth/login",
            headers=refused.headers,
            user_id=account,
        ) from None
    user = await guard.accounts.authenticate(body.email, body.password)
    if user is None:
        guard.login.failed(attempt)
        detail = printable(body.email)[:254]  # whatever it holds, escaped
        account = await _user_id(guard, body.email)  # the row names the account if it exists
        await guard.accounts.audit("user.login_failed", user_id=account, ip=ip, detail=detail)
        raise Problem(401, "login-failed", "wrong email or password")
    device = await guard.login.succeeded(attempt, user.id)
    await guard.accounts.audit("user.login", user_id=user.id, ip=ip)
    token = await guard.accounts.create_session(user.id)
    _set_session_cookie(request, response, token, int(guard.settings.session_ttl_s))
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=int(DEVICE_TTL_S),
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
        path="/api/v1/auth/login",  # sent with login attempts only
    )
    return User.model_validate(user)


async def _user_id(guard: Guard, email: str) -> int | None:
    """The id of the account with this email, if there is one (for audit rows)."""
    try:
        return (await guard.accounts.find_user(email)).id
    except (AccountNotFound, InvalidEmail):
        return None


@router.post("/api/v1/auth/logout", status_code=204, summary="End the dashboard session")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            await _guard(request).accounts.end_session(token)
        except RevocationPending:
            pass  # refused here already, logged, retried; /readyz and /metrics show it
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/api/v1/account", summary="Who am I: the account behind this key or session")
async def account(request: Request) -> Account:
    principal = _user_principal(request)
    user = await _guard(request).accounts.get_user(principal.user_id or 0)
    if user is None:
        raise Problem(401, "credentials-required", "the account no longer exists")
    return Account(
        user=User.model_validate(user),
        authenticated_by="key" if principal.key_id is not None else "session",
        key_id=principal.key_id,
    )


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_password: Annotated[str, Field(min_length=1, max_length=MAX_LENGTH)]
    new_password: Annotated[str, Field(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]


@router.post(
    "/api/v1/account/password",
    status_code=204,
    summary="Change your password: every session ends; this one gets a fresh cookie",
    responses=_problem_doc(403, 422),
)
async def change_password(body: PasswordChange, request: Request) -> Response:
    guard = _guard(request)
    principal = _user_principal(request)
    user_id = principal.user_id or 0
    ip = client_ip(request.client)
    try:
        changed = await guard.accounts.change_password(
            user_id, body.current_password, body.new_password
        )
    except WeakPassword as exc:
        raise Problem(422, "validation-error", str(exc)) from None
    if not changed:
        await guard.accounts.audit("user.password_change_failed", user_id=user_id, ip=ip)
        raise Problem(403, "password-wrong", "the current password is not right")
    await guard.accounts.audit("user.password_changed", user_id=user_id, ip=ip)
    response = Response(status_code=204)
    if principal.session:
        token = await guard.accounts.create_session(user_id)
        _set_session_cookie(request, response, token, int(guard.settings.session_ttl_s))
    return response


@router.get("/api/v1/limits", summary="Your tier, its limits, route weights and current usage")
async def limits(request: Request) -> dict[str, Any]:
    guard = _guard(request)
    principal = _user_principal(request)
    tier = guard.tier_of(principal)
    quota = guard.quotas[tier.name]
    usage = await guard.limiter.peek(guard.rate_key(principal, client_ip(request.client)), quota)
    return {
        "tier": tier.name,
        "server_time": now_ns() // 1_000_000,
        "limits": {
            "requests": tier.requests,
            "window_s": tier.window_s,
            "ws_connections": tier.ws_connections,
            "ws_subscriptions": tier.ws_subscriptions,
            "ws_inbound_per_s": tier.ws_inbound_per_s,
            "book_interval_ms": tier.book_interval_ms,
            "history_days": tier.history_days,
            "api_keys": tier.api_keys,
            "venues": None if tier.venues is None else list(tier.venues),
            "symbols": None if tier.symbols is None else list(tier.symbols),
            "channels": None if tier.channels is None else list(tier.channels),
        },
        "usage": {
            "requests_remaining": usage.remaining,
            "reset_s": round(usage.reset_s, 3),
            "ws_connections": guard.sockets.count(principal),
        },
        "weights": dict(guard.weights),
    }


@router.get("/api/v1/keys", summary="Your API keys (never the key text)")
async def list_keys(request: Request) -> KeyList:
    principal = _user_principal(request)
    keys = await _guard(request).accounts.list_keys(principal.user_id or 0)
    return KeyList(data=[ApiKey.model_validate(key) for key in keys])


@router.post(
    "/api/v1/keys",
    status_code=201,
    summary="Create an API key; the response holds the key, shown this once",
    responses=_problem_doc(403, 422),
)
async def create_key(body: NewKey, request: Request) -> CreatedKey:
    guard = _guard(request)
    principal = _user_principal(request)
    user_id = principal.user_id or 0
    try:
        text, key = await guard.accounts.create_key(user_id, body.name)
    except KeyLimitReached as exc:
        raise Problem(403, "key-limit", str(exc)) from None
    await guard.accounts.audit(
        "key.created", user_id=user_id, key_id=key.key_id, ip=client_ip(request.client)
    )
    return CreatedKey(key=text, **ApiKey.model_validate(key).model_dump())


@router.delete(
    "/api/v1/keys/{key_id}",
    status_code=204,
    summary="Revoke an API key: at once, open WebSockets using it are closed",
    responses=_problem_doc(404, 503),
)
async def revoke_key(key_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
    guard = _guard(request)
    principal = _user_principal(request)
    try:
        await guard.accounts.revoke_key(key_id, principal.user_id)
    except AccountNotFound:
        raise Problem(404, "not-found", f"no key {quote(key_id)} of yours") from None
    except RevocationPending as exc:  # refused here already; the write is retried
        raise Problem(503, "revocation-pending", str(exc), {"Retry-After": "5"}) from None
    await guard.accounts.audit(
        "key.revoked", user_id=principal.user_id, key_id=key_id, ip=client_ip(request.client)
    )
    return Response(status_code=204)


@router.post(
    "/api/v1/ws-ticket",
    summary="A single-use ticket for /ws?ticket=... (browsers cannot send headers)",
)
async def ws_ticket(request: Request) -> Ticket:
    guard = _guard(request)
    principal = _user_principal(request)
    ticket = await guard.accounts.mint_ticket(principal)
    return Ticket(ticket=ticket, expires_in_s=guard.settings.ws_ticket_ttl_s)


@router.get("/api/v1/admin/audit", summary="Audit log: logins, keys, denied requests (admins)")
async def audit(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditList:
    events = await _guard(request).accounts.audit_events(limit)
    return AuditList(data=[AuditEvent.model_validate(event) for event in events])


@router.get("/api/v1/time", tags=["service"], summary="Server time in ms since the epoch (UTC)")
async def server_time() -> dict[str, int]:
    return {"server_time": now_ns() // 1_000_000}
