"""Structured logs: one event per line, JSON in production, readable text in a terminal.

Every record carries the request id of the HTTP request it was logged under (a context
variable set by `RequestIdMiddleware`), and `venue`/`symbol` when the caller passes them with
`extra=`. Messages and fields are made `printable`: a control character from outside (an email
with an escape sequence, a URL-decoded path) is written as `\\x1b`, never sent to a terminal,
and a newline cannot forge a second event. Fields named like credentials (Authorization,
X-API-Key, cookies, ...) are replaced by `[redacted]`, also inside a logged `headers` mapping;
query strings are never logged.
uvicorn's own loggers go through the same handler (run it with `log_config=None`).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LogFormat = Literal["text", "json"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

REDACTED = "[redacted]"
SECRET_NAMES = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "api_key",
        "apikey",
        "cookie",
        "set-cookie",
        "password",
        "secret",
        "token",
        "ticket",
    }
)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn: the same text with ANSI colours
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
QUIET_PATHS = frozenset({"/livez", "/readyz", "/metrics"})
"""Probes and scrapes are logged at DEBUG only, so they do not drown the access log."""

access_log = logging.getLogger("quantsaas.access")


_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Unicode categories written as escapes: controls (ESC, BEL, NUL, C1 CSI...), format characters
(bidi overrides, zero-width), surrogates, private use, unassigned, line and paragraph separators."""


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character that could drive a terminal or forge a line (an escape
    sequence, a newline, a bidi override) written as an escape such as `\\x1b` or `\\u202e`.
    Everything that reaches an operator's terminal from outside goes through it: log lines and
    the CLI's tables."""
    if text.isprintable():
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _UNSAFE else char for char in text
    )


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.replace("_", "-") in SECRET_NAMES


def scrub(value: Any) -> Any:
    """A copy of `value` with every credential-named mapping entry redacted and every string
    made printable (recursively)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, Mapping):
        return {
            printable(str(key)): REDACTED if is_secret(str(key)) else scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(item) for item in value]
    return value


def _lines(text: str, indent: str = "") -> str:
    """A multi-line block (a traceback) with each of its lines made printable (and indented in
    text logs, so no line of it can pass for an event of its own, which starts with a time)."""
    return "\n".join(indent + printable(line) for line in text.splitlines())


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's extra fields (and context), secrets redacted."""
    fields: dict[str, Any] = {}
    current = request_id.get()
    if current is not None:
        fields["request_id"] = current
    for key, item in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = REDACTED if is_secret(key) else scrub(item)
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": printable(record.getMessage()),
        }
        event.update(_fields(record))
        if record.exc_info:
            event["exc"] = _lines(self.formatException(record.exc_info))
        if record.stack_info:
            event["stack"] = _lines(self.formatStack(record.stack_info))
        return orjson.dumps(event, default=lambda value: printable(str(value))).decode()


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = printable(record.getMessage())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {message}"
        fields = _fields(record)
        if fields:
            line += " " + " ".join(f"{key}={printable(str(fields[key]))}" for key in sorted(fields))
        if record.exc_info:
            line += "\n" + _lines(self.formatException(record.exc_info), indent="  ")
        return line


def configure_logging(level: str = "info", fmt: LogFormat = "text") -> None:
    """Send every logger (ours and uvicorn's) to stderr in `fmt`, one event per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True


def incoming_request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane token, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Binds a request id to everything logged while serving a request, echoes it in
    `X-Request-ID` and writes one access-log event per HTTP request (path without query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope)
        token = request_id.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, rid)
        finally:
            request_id.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path: str = scope["path"]
            level = logging.DEBUG if path in QUIET_PATHS else logging.INFO
            if access_log.isEnabledFor(level):
                duration_ms = round((time.perf_counter() - started) * 1000, 3)
                access_log.log(
                    level,
                    "%s %s %d",
                    scope["method"],
                    path,
                    status,
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status,
                        "duration_ms": duration_ms,
                    },
                )
