"""RFC 9457 problem details: every HTTP error is `application/problem+json` with a stable `type`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from quantsaas.api.headers import security_headers
from quantsaas.errors import BookNotReady, QuantError, UnknownInstrument

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "/problems/"

_TITLES = {
    "bad-request": "Bad request",
    "validation-error": "Invalid request parameters",
    "not-found": "Not found",
    "unknown-instrument": "Unknown instrument",
    "book-not-ready": "Order book not ready",
    "method-not-allowed": "Method not allowed",
    "internal-error": "Internal server error",
    "service-unavailable": "Service unavailable",
    "credentials-required": "Credentials required",
    "key-invalid": "Invalid API key",
    "session-expired": "Session expired",
    "login-failed": "Wrong email or password",
    "tier-required": "Not included in your tier",
    "admin-required": "Administrators only",
    "origin-not-allowed": "Origin not allowed",
    "rate-limited": "Too many requests",
    "login-locked": "Too many failed logins from unknown devices",
    "email-taken": "Email already registered",
    "weak-password": "Password not accepted",
    "key-limit": "Key limit reached",
    "payload-too-large": "Content too large",
    "revocation-pending": "Revocation in force here, not yet written",
}
_CODE_BY_STATUS = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    422: "validation-error",
    503: "service-unavailable",
}


class Problem(StarletteHTTPException):
    """Raise from a route to answer with a problem document. An HTTPException, so FastAPI's
    body reader lets it through unchanged when a refusal happens while it reads (intake.py)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, detail, headers)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra


def check_at_most(name: str, value: int, cap: int) -> None:
    """A 400 `bad-request` problem when a query parameter exceeds its configured cap."""
    if value > cap:
        raise Problem(400, "bad-request", f"{name} must be at most {cap}")


def problem_response(
    status: int,
    code: str,
    detail: str,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": _TITLES.get(code, code.replace("-", " ").capitalize()),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": _TITLES[code],
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, code in (
        (400, "bad-request"),
        (404, "unknown-instrument"),
        (422, "validation-error"),
    )
}


def install(app: FastAPI) -> None:
    """Register handlers so no error leaves the API in FastAPI's default shape."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(
            exc.status, exc.code, exc.detail, request.url.path, exc.headers, **exc.extra
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODE_BY_STATUS.get(exc.status_code, "bad-request")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        allow = getattr(request.app.state, "allow", None)  # api/openapi.py AllowTable
        if exc.status_code == 405 and allow is not None:
            headers["Allow"] = allow(request.url.path) or headers.get("Allow", "")
        return problem_response(exc.status_code, code, detail, request.url.path, headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)
        return problem_response(422, "validation-error", detail, request.url.path, errors=errors)

    async def on_quant(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, UnknownInstrument):
            return problem_response(404, "unknown-instrument", str(exc), request.url.path)
        if isinstance(exc, BookNotReady):
            return problem_response(503, "book-not-ready", str(exc), request.url.path)
        return problem_response(400, "bad-request", str(exc), request.url.path)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        response = problem_response(
            500, "internal-error", "internal server error", request.url.path
        )
        # Starlette answers this from its outermost middleware, outside SecurityHeadersMiddleware:
        # the headers every other answer gets are added here
        for name, value in security_headers(request.scope):
            response.headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        return response

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(QuantError, on_quant)
    app.add_exception_handler(Exception, on_crash)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "stable URI reference naming the problem"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "the last segment of `type`"},
        "instance": {"type": "string"},
    },
}
