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

SHELL_HEADERS = {"Cache-Control": "no-cache"}
"""index.html and the service worker must be revalidated so a new build is picked up."""


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
                await response(scope, receive, send)
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
