"""What a client can make the server hold before the service has decided to serve it.

Three bounds, from the outside in:

- **Request heads** (request line + headers): `BoundedHttpTools`, uvicorn's httptools protocol
  with a byte budget per head. httptools (llhttp) has no limit of its own: a 50 MB header was
  buffered whole before the app ever saw the request. Over `http_max_head_bytes` the connection
  gets 431, a URL over `http_max_url_bytes` 414, both as problem+json, and is closed. Were h11
  chosen instead, its `h11_max_incomplete_event_size` bounds the head (`server_options`).
- **Credentials and the rate limit before the body**: FastAPI reads and parses a route's body
  before any dependency runs, so an anonymous 50 MB POST used to be buffered and parsed and only
  then answered 401. `IntakeMiddleware` runs `guard_request` (credentials, tier, rate limit)
  when the route first asks for its body; a refused caller's body is never read.
- **Body bytes per route**: `Access.max_body` (api/access.py, a few KiB for JSON). A declared
  `Content-Length` over it is refused with 413 before reading; a body without one (chunked) is
  read through a counter that stops at the cap with the same 413.

WebSocket frames are bounded by uvicorn's `ws_max_size` (`ws_max_message_bytes`: close 1009).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # uvicorn[standard]

from quantsaas.api.access import Access, access_for
from quantsaas.api.auth import guard_request
from quantsaas.api.problems import PROBLEM_JSON, Problem
from quantsaas.config import Settings


def _too_large(cap: int) -> str:
    return f"the request body may hold at most {cap} bytes"


class IntakeMiddleware:
    """Runs `guard_request` and the route's body cap when the route first reads its body.

    FastAPI reads a body before it solves any dependency, so the guard cannot wait for its
    app-wide dependency there. This middleware hands the app a `receive` that, on its first
    call (routing is done by then: `scope["route"]` names the route), runs the guard, refuses a
    declared length over the cap, and then counts bytes up to the cap. A route without a body
    never calls it; its guard runs as the dependency. Refusals are `Problem`s, which FastAPI's
    body reader passes through as HTTPExceptions.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap: int | None = None
        read = 0

        async def guarded_receive() -> Message:
            nonlocal cap, read
            if cap is None:
                route = scope.get("route")
                path = getattr(route, "path", None)
                access = access_for(path) if isinstance(path, str) else Access()
                if route is not None:
                    await guard_request(Request(scope, receive))  # 401/403/429/503
                cap = access.max_body
                declared = _content_length(scope)
                if declared is not None and declared > cap:
                    raise Problem(413, "payload-too-large", _too_large(cap))
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > cap:
                    raise Problem(413, "payload-too-large", _too_large(cap))
            return message

        await self.app(scope, guarded_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                raise Problem(400, "bad-request", "Content-Length is not a number") from None
    return None


def _refusal(status: int, reason: str, code: str, detail: str) -> bytes:
    body = orjson.dumps(
        {"type": f"/problems/{code}", "title": reason, "status": status, "detail": detail}
        | {"code": code}
    )
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {PROBLEM_JSON}\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HeadTooLarge(Exception):
    pass


def bounded_httptools(max_head_bytes: int, max_url_bytes: int) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with these bounds on each request head."""
    head_detail = f"the request line and headers may hold at most {max_head_bytes} bytes"
    too_large = _refusal(431, "Request Header Fields Too Large", "headers-too-large", head_detail)
    too_long = _refusal(414, "URI Too Long", "uri-too-long", f"at most {max_url_bytes} bytes")

    class BoundedHttpTools(HttpToolsProtocol):
        """Counts each request head: the URL and every complete header through the parser's
        callbacks, and the bytes of reads during which no callback completed (one header still
        arriving, which llhttp buffers until it ends). At most one read (<= 256 KiB) beyond."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = False
            self._head_bytes = 0  # URL and complete headers of the current head
            self._open_bytes = 0  # reads since the last callback of the current head
            self._progress = False
            self._refusal: bytes | None = None

        def data_received(self, data: bytes) -> None:
            self._progress = False
            super().data_received(data)
            if self._in_head and self._refusal is None:
                self._open_bytes = 0 if self._progress else self._open_bytes + len(data)
                if self._head_bytes + self._open_bytes > max_head_bytes:
                    self._refusal = too_large
                    self.send_400_response("")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes, self._open_bytes = True, 0, 0

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self._head_bytes += len(url)
            self._progress = True
            if len(self.url) > max_url_bytes:
                self._refusal = too_long
                raise _HeadTooLarge  # the parser reports it: send_400_response below

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_bytes += len(name) + len(value) + 4
            self._progress = True
            if self._head_bytes > max_head_bytes:
                self._refusal = too_large
                raise _HeadTooLarge
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def send_400_response(self, msg: str) -> None:
            if self._refusal is None:
                super().send_400_response(msg)
                return
            self.transport.write(self._refusal)
            self.transport.close()

    return BoundedHttpTools


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config options bounding request heads (the benchmarks and `serve` use them)."""
    return {
        "http": bounded_httptools(settings.http_max_head_bytes, settings.http_max_url_bytes),
        "h11_max_incomplete_event_size": settings.http_max_head_bytes,  # if h11 is chosen
    }
