"""Who may call what: the one table of route access rules, and the tier checks they imply.

Every HTTP route is listed in `ROUTES` by its path template. A route that is missing from the
table needs credentials and no particular tier feature, so a new route is closed until someone
opens it here. `tests/api/test_access.py` checks that every route of the app is listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from quantsaas.accounts.tiers import Tier

JSON_BODY_CAP = 8 * 1024
"""Bytes a JSON request body may hold: the largest one (a password change, two 128-character
passwords even written as \\uXXXX escapes) fits in about 3 KiB."""


@dataclass(frozen=True)
class Access:
    public: bool = False
    """No credentials needed; anonymous callers are rate limited per IP."""
    family: str | None = None
    """The tier feature the route serves (a WS channel name, or `history`)."""
    anonymous_quota: str = "anonymous"
    """Which per-IP quota anonymous calls draw from (`login` for the brute-force guard)."""
    admin: bool = False
    user: bool = False
    """Only a signed-in user (key or session), not an anonymous caller, even with a demo tier."""
    limited: bool = True
    """False only for probes: no credentials looked at, no rate limit."""
    audit_anonymous: bool = True
    """False where a 401 is the normal answer to "am I signed in?" (the dashboard asks on every
    page load): logged and counted, but no audit row."""
    max_body: int = JSON_BODY_CAP
    """Request body bytes the route may read (api/intake.py: checked after credentials and the
    rate limit, before a byte of the body is read)."""


PUBLIC = Access(public=True)
PROBE = Access(public=True, limited=False)
SIGNED_IN = Access(user=True)
SESSION_PROBE = Access(user=True, audit_anonymous=False)
LOGIN = Access(public=True, anonymous_quota="login")

ROUTES: Mapping[str, Access] = {
    # service and operations: open, so probes and first-time visitors need nothing
    "/": PUBLIC,
    "/health": PROBE,
    "/livez": PROBE,
    "/readyz": PROBE,
    "/metrics": PROBE,  # keep it internal at the proxy (README, Deployment)
    "/api/v1/instruments": PUBLIC,
    "/api/v1/time": PUBLIC,
    # the market summary is public but delayed for anonymous callers (routes.market_data)
    "/api/market_data": PUBLIC,
    # accounts
    "/api/v1/auth/signup": LOGIN,
    "/api/v1/auth/login": LOGIN,
    "/api/v1/auth/logout": PUBLIC,
    "/api/v1/account": SESSION_PROBE,
    # checks the current password: the login budget per IP guards it against guessing
    "/api/v1/account/password": Access(user=True, anonymous_quota="login"),
    "/api/v1/limits": SESSION_PROBE,
    "/api/v1/keys": SIGNED_IN,
    "/api/v1/keys/{key_id}": SIGNED_IN,
    "/api/v1/ws-ticket": SESSION_PROBE,
    "/api/v1/admin/audit": Access(user=True, admin=True),
    # market data, by the tier feature each one serves
    "/api/v1/book/{venue}/{symbol}": Access(family="book"),
    "/api/v1/trades/{venue}/{symbol}": Access(family="trades"),
    "/api/v1/analytics/candles/{venue}/{symbol}": Access(family="candles"),
    "/api/v1/analytics/vwap/{venue}/{symbol}": Access(family="vwap"),
    "/api/v1/analytics/ofi/{venue}/{symbol}": Access(family="ofi"),
    "/api/v1/analytics/vpin/{venue}/{symbol}": Access(family="vpin"),
    "/api/v1/options/{currency}/chain": Access(family="options"),
    "/api/v1/options/{currency}/smile": Access(family="options"),
    "/api/v1/consolidated": Access(family="consolidated_book"),
    "/api/v1/consolidated/bbo/{symbol}": Access(family="bbo"),
    "/api/v1/consolidated/book/{symbol}": Access(family="consolidated_book"),
    "/api/v1/consolidated/tape/{symbol}": Access(family="tape"),
    "/api/v1/history/trades/{venue}/{symbol}": Access(family="history"),
    "/api/v1/history/candles/{venue}/{symbol}": Access(family="history"),
    "/api/v1/history/book/{venue}/{symbol}": Access(family="history"),
    "/api/v1/history/books/{venue}/{symbol}": Access(family="history"),
    # results of backtests users ran in their own processes: their own only
    "/api/v1/backtests": Access(user=True, family="backtests"),
    "/api/v1/backtests/{backtest_id}": Access(user=True, family="backtests"),
}
"""Path template -> access rule. Not listed: credentials required (SIGNED_IN)."""

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
"""Starlette routes added by FastAPI itself: always public (the dashboard reads the schema)."""


def access_for(path_template: str) -> Access:
    return ROUTES.get(path_template, SIGNED_IN)


def canonical_symbol(text: str) -> str:
    """`BTC-USD` (as written in URL paths) and `btc/usd` both become `BTC/USD`; a name with
    more dashes (an option, `BTC-PERP-INTX`) is kept. Callers pass resolved instrument symbols
    (quantsaas.symbols) where they can: this is the fallback for text naming nothing served."""
    upper = text.upper()
    return upper.replace("-", "/") if "/" not in upper and upper.count("-") == 1 else upper


def tier_denial(
    tier: Tier,
    family: str | None,
    venue: str | None = None,
    symbols: Iterable[str] = (),
) -> str | None:
    """Why `tier` may not have this data, or None when it may."""
    if family is not None and tier.channels is not None and family not in tier.channels:
        return f"the {tier.name} tier does not include {family}"
    if venue is not None and tier.venues is not None and venue not in tier.venues:
        return f"the {tier.name} tier does not include the venue {venue}"
    if tier.symbols is not None:
        for symbol in symbols:
            if canonical_symbol(symbol) not in tier.symbols:
                return f"the {tier.name} tier does not include {canonical_symbol(symbol)}"
    return None


SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "Bearer": {"type": "http", "scheme": "bearer", "description": "the same API key"},
    "Session": {"type": "apiKey", "in": "cookie", "name": "qs_session"},
}
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_DENIALS = {
    401: "Credentials missing, unknown or revoked",
    403: "Not included in your tier (or origin not allowed)",
    429: "Rate limit exceeded: see Retry-After and RateLimit",
}


def openapi_security(schema: dict[str, Any]) -> None:
    """Document ROUTES in an OpenAPI schema: security schemes, and the 401/403/429 answers
    each route can give (so the schema tells the truth and schemathesis can hold us to it)."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in schema.get("paths", {}).items():
        access = access_for(path)
        if not access.limited:
            continue
        statuses = [401, 429] if access.public else [401, 403, 429]
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(
                    str(status),
                    {
                        "description": _DENIALS[status],
                        "content": {"application/problem+json": {"schema": _PROBLEM}},
                    },
                )
            if not access.public:
                operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
