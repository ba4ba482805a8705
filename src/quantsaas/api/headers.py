"""Security headers on every HTTP response: a pure ASGI middleware (WebSocket scopes untouched).

The dashboard is the page a browser runs, so its policy is the strict one: scripts, styles,
fonts, the manifest and the feed worker from this origin only; connections to this origin and
to its WebSocket (`ws://` or `wss://` + the request's host: `'self'` alone does not cover
WebSocket schemes in every browser); images from this origin and `data:`; no plugins, no
`<base>`, forms post here only, and no page may frame it (`frame-ancestors 'none'`, with
`X-Frame-Options: DENY` for browsers older than CSP 2). API answers carry the same policy,
harmless to a JSON client. The interactive docs (`/docs`, `/redoc`) are pages FastAPI writes
with an inline script and the Swagger UI / ReDoc bundles from jsDelivr, so they get a policy
that allows exactly those and nothing more.

`X-Content-Type-Options: nosniff` everywhere; `Referrer-Policy: no-referrer` (the dashboard
only calls its own origin, nothing needs the referrer). HSTS only when the request reached us
over TLS: the scope's scheme is `https` when uvicorn terminates TLS or when a trusted proxy
said so (`--forwarded-allow-ips` makes uvicorn apply `X-Forwarded-Proto` from those proxies
only), so a spoofed header from anyone else cannot turn it on. A header a route set itself is
left as it is.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS_MAX_AGE_S = 31_536_000
"""One year. No includeSubDomains: the deployer's other hosts are not ours to pin to TLS."""

DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
_CDN = "https://cdn.jsdelivr.net"
_HOST = re.compile(r"^[A-Za-z0-9.\-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$")
"""A Host header we are willing to write into the policy (a name or an IP, and a port)."""


def dashboard_policy(host: str | None) -> str:
    """The Content-Security-Policy of the dashboard and the API, for a request to `host`."""
    connect = "'self'"
    if host is not None and _HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src {connect}; worker-src 'self'; manifest-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


DOCS_POLICY = (
    f"default-src 'self'; script-src 'self' 'unsafe-inline' {_CDN}; "
    f"style-src 'self' 'unsafe-inline' {_CDN} https://fonts.googleapis.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_HSTS = (b"strict-transport-security", f"max-age={HSTS_MAX_AGE_S}".encode())
_CSP = b"content-security-policy"


def _host(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return None


def security_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers a response to this HTTP request gets (before what the response set)."""
    path: str = scope.get("path", "")
    policy = DOCS_POLICY if path in DOCS_PAGES else dashboard_policy(_host(scope))
    headers = [*_ALWAYS, (_CSP, policy.encode())]
    if scope.get("scheme") == "https":
        headers.append(_HSTS)
    return headers


class SecurityHeadersMiddleware:
    """Adds `security_headers(scope)` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = security_headers(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(item for item in extra if item[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
