"""Kraken WebSocket v1 (legacy), only as far as needed to replay recorded book files.

v1 data frames are arrays `[channelID, payload, (payload,) channelName, pair]`. A book snapshot
has `as`/`bs`; an update has `a` and/or `b` (one frame may carry both, in two dicts) and the
checksum `c` (a string) in the last dict. Levels are `[price, volume, time(, "r")]` strings,
applied in array order. The checksum rule is v2's (`book.checksum`). Event frames (`systemStatus`,
`subscriptionStatus`, `heartbeat`) are objects. An update of the usual shape (one payload) is
decoded typed from the raw frame (`parse_v1_frame`); everything else goes through the decoded
JSON (`parse_v1`), which names any error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias

import msgspec

from quantsaas.errors import ProtocolError, describe, quote
from quantsaas.feeds.kraken.book import BookUpdate, TextLevel
from quantsaas.feeds.kraken.parse import BookMessage, decode
from quantsaas.feeds.numbers import seconds_text_ns
from quantsaas.model import MAX_RAW


@dataclass(frozen=True, slots=True)
class Event:
    """An object frame: `systemStatus`, `subscriptionStatus`, `heartbeat`, `pong`, ..."""

    name: str
    payload: dict[str, Any]


class V1Book(BookMessage, frozen=True, gc=False):
    """A v1 book message, with the depth of its channel (`book-1000`: 1000)."""

    depth: int


Parsed: TypeAlias = Event | V1Book | None


def _levels(rows: Any) -> tuple[list[TextLevel], int]:
    out: list[TextLevel] = []
    latest = 0
    for row in rows:
        price, volume, stamp = row[0], row[1], row[2]
        if not isinstance(price, str) or not isinstance(volume, str):
            raise ProtocolError(f"kraken v1: level prices must be strings, got {quote(row)}")
        out.append(TextLevel(price, volume))
        latest = max(latest, seconds_text_ns(stamp))
    return out, latest


class _Level(msgspec.Struct, array_like=True, gc=False):
    """`[price, volume, time(, "r")]`: the book reads `price` and `qty` (as of `TextLevel`)."""

    price: str
    qty: str
    time: str
    flag: str = ""


class _Update(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """An update's payload; a snapshot's `as`/`bs` (or anything else) is an unknown field, so
    such a frame takes the general path."""

    c: str
    a: list[_Level] = []
    b: list[_Level] = []


_UPDATE = msgspec.json.Decoder(tuple[int, _Update, str, str])
_DEPTH_OF: dict[str, int] = {}


def parse_v1_frame(raw: str | bytes, ts_recv: int) -> Parsed:
    """A raw v1 frame -> an event, a book message, or None (other channels). A book update of
    the usual shape (one payload, levels of strings, a checksum) is decoded typed, its levels
    straight into structs the book reads; anything else (and any error) takes the general
    path, which gives the exact error."""
    try:
        _, payload, channel, pair = _UPDATE.decode(raw)
        depth = _DEPTH_OF.get(channel)
        crc = payload.c
        if depth is not None and crc.isdigit() and len(crc) <= 20:
            latest = 0
            asks, bids = payload.a, payload.b
            for row in asks + bids if bids and asks else asks or bids:
                stamp = row.time
                digits = stamp.replace(".", "", 1)
                if (
                    len(stamp) == 17 and stamp[10] == "." and digits.isdigit() and digits.isascii()
                ):  # the venue's own form (10 digits . 6 digits) inline, any other checked
                    at = int(digits) * 1000
                else:
                    at = seconds_text_ns(stamp)
                if at > latest:
                    latest = at
            if latest <= MAX_RAW:
                return V1Book(
                    pair, False, BookUpdate(bids, asks, int(crc), latest or ts_recv), depth
                )
    except (msgspec.DecodeError, ValueError):
        pass
    return parse_v1(decode(raw), ts_recv)


def parse_v1(message: Any, ts_recv: int) -> Parsed:
    """A decoded v1 frame -> an event, a book message, or None (other channels)."""
    if isinstance(message, dict):
        name = message.get("event")
        if not isinstance(name, str):
            keys = quote(sorted(message)[:8])
            raise ProtocolError(f"kraken v1: object frame without `event`: {keys}")
        return Event(name, message)
    if not isinstance(message, list) or len(message) < 4:
        raise ProtocolError("kraken v1: expected an event object or a channel array")
    channel, pair = message[-2], message[-1]
    if not isinstance(channel, str) or not channel.startswith("book"):
        return None
    try:
        depth = int(channel.partition("-")[2] or 10)
        if depth > 0 and len(_DEPTH_OF) < 64:
            _DEPTH_OF[channel] = depth
        payloads = message[1:-2]
        if not payloads or not all(isinstance(p, dict) for p in payloads):
            raise ProtocolError("kraken v1: book payloads must be objects")
        if "as" in payloads[0] or "bs" in payloads[0]:
            asks, t_a = _levels(payloads[0].get("as", ()))
            bids, t_b = _levels(payloads[0].get("bs", ()))
            update = BookUpdate(bids, asks, None, max(t_a, t_b) or ts_recv)
            return V1Book(str(pair), True, update, depth)
        ask_rows: list[Any] = []
        bid_rows: list[Any] = []
        for payload in payloads:
            ask_rows.extend(payload.get("a", ()))
            bid_rows.extend(payload.get("b", ()))
        asks, t_a = _levels(ask_rows)
        bids, t_b = _levels(bid_rows)
        raw_checksum = payloads[-1].get("c")
        if raw_checksum is not None and not (
            isinstance(raw_checksum, str) and raw_checksum.isdigit() and len(raw_checksum) <= 20
        ):
            raise ProtocolError(f"kraken v1: checksum {quote(raw_checksum, 20)} is not a CRC32")
        checksum = None if raw_checksum is None else int(raw_checksum)
        update = BookUpdate(bids, asks, checksum, max(t_a, t_b) or ts_recv)
        return V1Book(str(pair), False, update, depth)
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"kraken v1: malformed {quote(channel, 40)}: {describe(exc)}") from None
