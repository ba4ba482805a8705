"""Serve the built dashboard (web/dist) next to the API.

`GET /` from a browser (`Accept: text/html`) gets the app's index.html; API clients (JSON or
`*/*`) still reach the JSON service information. Hashed bundles are under `/assets/`, and the
few files Vite copies to the top of dist (manifest, service worker, icons) are served by name.
Nothing here runs when the dist directory has not been built.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from quantsaas.api.auth import SESSION_COOKIE

SHELL_HEADERS = {"Cache-Control": "no-cache"}
"""index.html and the service worker must be revalidated so a new build is picked up."""
SESSION_HINT = "qs_signed_in"
"""A cookie the page can read (the session cookie is HttpOnly): set when the request for the
page carried a session cookie, removed when it did not. The dashboard asks who is signed in
(`/api/v1/account`) and fetches stream tickets only when it is there, so an anonymous visitor's
page load causes no 401s (each one a logged denial). A session ended elsewhere costs one 401,
after which the dashboard drops the stale cookie (POST /api/v1/auth/logout)."""


def cookie_names(scope: Scope) -> set[str]:
    names: set[str] = set()
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                names.add(part.partition("=")[0].strip())
    return names


def with_session_hint(response: Response, scope: Scope) -> Response:
    """Mirror the presence of the session cookie into SESSION_HINT on the page's response."""
    names = cookie_names(scope)
    if SESSION_COOKIE in names:
        secure = scope.get("scheme") == "https"
        response.set_cookie(SESSION_HINT, "1", path="/", samesite="strict", secure=secure)
    elif SESSION_HINT in names:
        response.delete_cookie(SESSION_HINT, path="/", samesite="strict")
    return response


def wants_html(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"accept":
            return b"text/html" in value
    return False


class DashboardMiddleware:
    """Answers `/` for browsers and the top-level dist files; everything else passes through."""

    def __init__(self, app: ASGIApp, dist: Path) -> None:
        self.app = app
        self.dist = dist.resolve()
        self.assets = (self.dist / "assets").resolve()
        self.top_files = {
            path.name
            for path in self.dist.iterdir()
            if path.is_file() and path.name != "index.html"
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            if path == "/" and wants_html(scope):
                response = FileResponse(self.dist / "index.html", headers=SHELL_HEADERS)
                await with_session_hint(response, scope)(scope, receive, send)
                return
            if path.startswith("/assets/"):
                await self._asset(path[len("/assets/") :])(scope, receive, send)
                return
            name = path[1:]
            if name in self.top_files:
                headers = SHELL_HEADERS if name == "sw.js" else None
                await FileResponse(self.dist / name, headers=headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _asset(self, name: str) -> Response:
        file = (self.assets / name).resolve()
        if not file.is_file() or not file.is_relative_to(self.assets):
            return Response("not found", status_code=404, media_type="text/plain")
        # bundles have content hashes in their names: cache them for good
        return FileResponse(file, headers={"Cache-Control": "public, max-age=31536000, immutable"})


def dashboard_dist(dist: Path | None) -> Path | None:
    """The dist directory when it holds a built app, else None."""
    if dist is None or not (dist / "index.html").is_file():
        return None
    return dist
