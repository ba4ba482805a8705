"""The one error tree of Quant-SaaS.

    QuantError
    ├── ConfigError            bad settings or command-line values        (also ValueError)
    ├── InvalidNumber          a price or size that is not exact decimal text (also ValueError)
    ├── UnknownInstrument      a venue/symbol pair nobody serves           (also KeyError)
    ├── BookError
    │   ├── CrossedBook        best bid >= best ask after an update
    │   └── BookNotReady       no snapshot yet, or flagged invalid awaiting resync
    ├── StorageError           recorded history cannot be written or read
    ├── BusError
    │   └── SubscriptionClosed a subscriber was disconnected (slow consumer, shutdown)
    ├── AccountError           users, API keys, sessions (accounts/)
    │   ├── EmailTaken         a user with this email exists
    │   ├── InvalidEmail       not an email address                        (also ValueError)
    │   ├── WeakPassword       too short or too long                       (also ValueError)
    │   ├── UnknownTier        a tier name the tiers file does not define  (also ConfigError)
    │   ├── AccountNotFound    no such user or key (or not the caller's)   (also KeyError)
    │   ├── KeyLimitReached    the tier's most live API keys exist already
    │   └── RevocationPending  refused in this process, not yet written (retried)
    └── VenueError             anything a feed meets on the wire
        ├── ConnectError
        ├── ProtocolError      malformed or unexpected frame
        │   └── MalformedBook  a book frame of a known instrument: its book is not trusted
        ├── SequenceGap        missing update ids / sequence numbers
        └── ChecksumMismatch   a venue checksum disagrees with our book

The Python client's errors (AuthError, RateLimited, ServerGone, ...) hang under `ClientError`, a
QuantError too, in quantsaas/client/errors.py: the client may import only this module and the
model of ours.

Builtin bases are added where callers naturally catch them (aiohttp style).

Every message that quotes outside input goes through `quote` (at most ~100 characters of it),
so a 100 kB product id never reaches a log line, /health or a CLI error whole; `clip` bounds a
message of our own that may embed such quotes (an exception's text) as a last line of defence.
"""

from __future__ import annotations

import reprlib

QUOTE_LIMIT = 100
"""Characters of outside input a message may quote."""
MESSAGE_LIMIT = 500
"""Characters of an error message kept where it is stored or shown (/health `last_error`)."""


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` (outside input) quoted for a message: repr of at most `limit` characters of it,
    followed by its full length when it was cut. Never builds the repr of a huge value whole."""
    if isinstance(value, bytes | bytearray | memoryview):
        head = bytes(value[: limit * 4]).decode("utf-8", "replace")
        return _cut(head[:limit], len(value), "bytes", len(value) > limit)
    if isinstance(value, str):
        return _cut(value[:limit], len(value), "chars", len(value) > limit)
    shown = _REPR.repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "…"


def _cut(head: str, size: int, unit: str, cut: bool) -> str:
    return f"{head!r}… ({size:,} {unit})" if cut else repr(head)


def clip(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message of ours bounded to `limit` characters (it may embed quoted input)."""
    if len(message) <= limit:
        return message
    return f"{message[:limit]}… ({len(message):,} chars)"


def describe(exc: BaseException, limit: int = 200) -> str:
    """`TypeName: text` of an exception, bounded (its text may quote outside input)."""
    return clip(f"{type(exc).__name__}: {exc}", limit)


class _BoundedRepr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4 * QUOTE_LIMIT:  # repr would be long, or refused (4,300 digits)
            return f"<{x.bit_length():,}-bit integer>"
        return super().repr_int(x, level)


def _bounded_repr() -> reprlib.Repr:
    shape = _BoundedRepr()
    shape.maxstring = shape.maxother = QUOTE_LIMIT
    shape.maxlist = shape.maxtuple = shape.maxdict = shape.maxset = 8
    shape.maxlevel = 3
    return shape


_REPR = _bounded_repr()


class QuantError(Exception):
    """Base of every error raised by Quant-SaaS on purpose."""


class ConfigError(QuantError, ValueError):
    """A setting or command-line value is invalid."""


class InvalidNumber(QuantError, ValueError):
    """Text that should be an exact decimal price or size is not one."""


class UnknownInstrument(QuantError, KeyError):
    """No instrument with this venue and symbol is known."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown instrument"


class BookError(QuantError):
    """The order book cannot accept an update or answer a query."""


class CrossedBook(BookError):
    """An update left the best bid at or above the best ask."""


class BookNotReady(BookError):
    """The book has no valid snapshot (never received, or invalidated)."""


class StorageError(QuantError):
    """Recorded history cannot be written or read (disk full, permissions, no data)."""


class BusError(QuantError):
    """Publish/subscribe failure."""


class SubscriptionClosed(BusError):
    """The subscription was closed; `reason` tells why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccountError(QuantError):
    """A user, API key or session operation was refused."""


class EmailTaken(AccountError):
    """A user with this email address already exists."""


class InvalidEmail(AccountError, ValueError):
    """The text is not an email address."""


class WeakPassword(AccountError, ValueError):
    """The password is shorter or longer than allowed."""


class UnknownTier(AccountError, ConfigError):
    """No tier with this name is defined."""


class AccountNotFound(AccountError, KeyError):
    """No such user or API key (also when it belongs to someone else: no existence oracle)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


class KeyLimitReached(AccountError):
    """The user's tier allows no more live API keys."""


class RevocationPending(AccountError):
    """A revocation is in force in this process but writing it failed; it is being retried.
    Until it is written other processes do not know of it."""


class VenueError(QuantError):
    """Something went wrong talking to a venue."""


class ConnectError(VenueError, ConnectionError):
    """The venue could not be reached or dropped the connection."""


class ProtocolError(VenueError):
    """A frame was malformed or not what the protocol allows."""


class MalformedBook(ProtocolError):
    """A book frame of a known instrument was malformed (a poisoned price or size, a bad level):
    the frame is dropped, so that instrument's book misses an update and must be resynced.
    `symbol` is the venue's native symbol."""

    def __init__(self, message: str, symbol: str) -> None:
        super().__init__(message)
        self.symbol = symbol


class SequenceGap(VenueError):
    """Sequence numbers or update ids skipped: the book must be resynced."""


class ChecksumMismatch(VenueError):
    """The venue's book checksum disagrees with the local book."""
