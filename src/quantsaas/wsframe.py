"""Server-to-client WebSocket frames, made once and shared by every socket (RFC 6455, RFC 7692).

A frame a server sends is not masked (RFC 6455 §5.1), so the bytes of one message's frame are
the same on every connection: the bus frames a message once (`Envelope.frame`) and the stream
writes those bytes to every subscriber (api/fanout.py).

Compression (permessage-deflate, RFC 7692) is negotiated without server context takeover, so a
message is compressed on its own, never against the previous ones: one compressed frame serves
every client that negotiated the same window size. There is one compressor per window size in
the process; `Z_FULL_FLUSH` after each message empties its history (so nothing refers back
across messages) and ends the output on a byte boundary with the empty stored block
`00 00 ff ff` that RFC 7692 §7.2.1 removes. Reusing the compressor that way costs a fifth of
creating one per message (zlib allocates and clears ~256 KiB per compressor).

A message that deflate does not shrink is sent uncompressed (RSV1 clear), which RFC 7692 allows
for any message: the client reads the flag per message.
"""

from __future__ import annotations

import struct
import zlib

PLAIN = 0
"""`deflate_bits` of a connection that did not negotiate compression."""
WINDOW_BITS = range(9, 16)
"""Server window sizes we compress with (zlib cannot make raw deflate with an 8-bit window)."""
COMPRESS_LEVEL = 6
"""Paid once per message, not per client, so the default level: ~40% smaller market data."""

_TEXT = 0x81
"""FIN + opcode 1 (text): every message is one frame."""
_RSV1 = 0x40
"""Set on the frame of a compressed message."""
_TAIL = b"\x00\x00\xff\xff"
_compressors: dict[int, zlib._Compress] = {}


def header(length: int, compressed: bool = False) -> bytes:
    """The header of an unmasked final text frame with a payload of `length` bytes."""
    first = _TEXT | _RSV1 if compressed else _TEXT
    if length < 126:
        return bytes((first, length))
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def deflate(payload: bytes, window_bits: int) -> bytes:
    """`payload` compressed on its own (no context takeover), without the trailing empty block."""
    compressor = _compressors.get(window_bits)
    if compressor is None:
        if window_bits not in WINDOW_BITS:
            raise ValueError(f"window bits must be 9..15, not {window_bits!r}")
        compressor = _compressors[window_bits] = zlib.compressobj(
            COMPRESS_LEVEL, zlib.DEFLATED, -window_bits
        )
    data = compressor.compress(payload) + compressor.flush(zlib.Z_FULL_FLUSH)
    return data[:-4] if data.endswith(_TAIL) else data


def text_frame(payload: bytes, deflate_bits: int = PLAIN) -> bytes:
    """One text message as a complete frame, compressed with a `deflate_bits` window unless that
    is `PLAIN` (or compression would not make it smaller)."""
    if deflate_bits:
        packed = deflate(payload, deflate_bits)
        if len(packed) < len(payload):
            return header(len(packed), True) + packed
    return header(len(payload)) + payload
