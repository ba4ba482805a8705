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
        ├── SequenceGap        missing update ids / sequence numbers
        └── ChecksumMismatch   a venue checksum disagrees with our book

Builtin bases are added where callers naturally catch them (aiohttp style).
"""

from __future__ import annotations


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


class SequenceGap(VenueError):
    """Sequence numbers or update ids skipped: the book must be resynced."""


class ChecksumMismatch(VenueError):
    """The venue's book checksum disagrees with the local book."""


QUOTE_LIMIT = 100
"""At most this many characters of any outside input are quoted in a message."""


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of outside input, cut to `limit` characters (a 100 kB symbol must not become a
    100 kB log line, /health body or CLI error)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} chars)"
