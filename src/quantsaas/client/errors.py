"""The client's errors: one type per way a call can fail, all under `ClientError`.

    QuantError                     (quantsaas.errors: the one tree of the project)
    └── ClientError                anything the client raises on purpose
        ├── AuthError              no, wrong, revoked or disabled credentials (401, close 4401/4001)
        ├── TierRequired           outside your tier (403 `tier-required`, stream `tier_required`)
        ├── RateLimited            over the request budget; `retry_after` seconds from the server
        ├── NotFound               no such thing (404: a backtest id that is not yours)
        │   └── UnknownSymbol      no such venue/symbol (404, `unknown_symbol`; also KeyError)
        ├── BadRequest             the server refused the request's parameters (400/422)
        ├── NotReady               the server has no valid book for it yet (503 book-not-ready)
        ├── ServerGone             unreachable, or gone for longer than the reconnect budget
        │                          (also ConnectionError)
        ├── StreamStalled          a stream silent for longer than `stall_s` (also TimeoutError)
        └── ProtocolViolation      the server sent something the protocol does not allow

The mapping from what the server says (RFC 9457 problem `code`, WebSocket error `code`, close
code) to these types is here and nowhere else, so every entry point raises the same type for the
same failure. Messages quote at most ~100 characters of anything the server sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantsaas.errors import QuantError, UnknownInstrument, quote


class ClientError(QuantError):
    """Base of every error the client raises on purpose."""


class AuthError(ClientError):
    """The server refused the credentials (missing, wrong, revoked, disabled, not allowed)."""


class TierRequired(ClientError):
    """What was asked for is not included in the caller's tier."""


class RateLimited(ClientError):
    """Over the request budget; retry after `retry_after` seconds (None: the server did not say)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotFound(ClientError, LookupError):
    """What was asked for does not exist (or is not the caller's: no existence oracle)."""


class UnknownSymbol(NotFound, UnknownInstrument):
    """No instrument with this venue and symbol (or no history of it)."""


class BadRequest(ClientError, ValueError):
    """The server refused the parameters of a request (bad time, range, limit, interval...)."""


class NotReady(ClientError):
    """The server cannot answer yet (its book is resynchronising); asking again later works."""


class ServerGone(ClientError, ConnectionError):
    """The server cannot be reached, or stayed unreachable past the reconnect budget."""


class StreamStalled(ClientError, TimeoutError):
    """A stream received nothing for longer than its limit while the connection was up."""


class ProtocolViolation(ClientError):
    """The server sent something the protocol does not allow (the client cannot go on)."""


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in delta seconds (the server never sends the HTTP-date form)."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def problem_error(status: int, body: Any, headers: Mapping[str, str]) -> ClientError:
    """The error for an HTTP error response (a problem+json body, or anything else)."""
    code = body.get("code") if isinstance(body, dict) else None
    detail = body.get("detail") if isinstance(body, dict) else None
    text = quote(detail if isinstance(detail, str) else body)
    message = f"HTTP {status} {code or ''}: {text}".replace("  ", " ")
    if status == 429:
        return RateLimited(message, retry_after_of(headers))
    if status == 401 or code in ("admin-required", "origin-not-allowed"):
        return AuthError(message)
    if code == "tier-required":
        return TierRequired(message)
    if status == 404:
        return (
            UnknownSymbol(message)
            if code in ("unknown-instrument", "no-data")
            else NotFound(message)
        )
    if status in (400, 405, 422):
        return BadRequest(message)
    if code == "book-not-ready":
        return NotReady(message)
    if status in (502, 503, 504):
        return ServerGone(message)
    return ClientError(message)


STREAM_ERRORS: dict[str, type[ClientError]] = {
    "unknown_symbol": UnknownSymbol,
    "unknown_channel": BadRequest,
    "bad_request": BadRequest,
    "bad_json": ProtocolViolation,
    "unknown_op": ProtocolViolation,
    "too_many_subscriptions": TierRequired,
    "tier_required": TierRequired,
}
"""/ws `error` message codes (api/stream.py) -> the error a subscription raises."""


def stream_error(message: Mapping[str, Any]) -> ClientError:
    """The error for a /ws `error` message (a refused handshake or subscription)."""
    code = message.get("code")
    text = f"{quote(code)}: {quote(message.get('message', ''))}"
    status = message.get("status")
    if status == 401 or code in ("credentials-required", "key-invalid", "session-expired"):
        return AuthError(text)
    if status == 429:
        return RateLimited(text, None)
    if status == 403:
        return TierRequired(text) if code == "tier-required" else AuthError(text)
    kind = STREAM_ERRORS.get(code) if isinstance(code, str) else None
    return (kind or ClientError)(text)


CLOSE_REVOKED = 4001
CLOSE_SLOW_CONSUMER = 4008
FATAL_CLOSES: dict[int, type[ClientError]] = {
    CLOSE_REVOKED: AuthError,
    4002: AuthError,  # the signed-in session ended (logout, password change): sign in again
    4401: AuthError,
    4403: AuthError,
}
"""Close codes after which reconnecting cannot help; every other close is reconnected (4003, the
caller's tier changed, and 4008, a slow reader, included)."""
