"""Raw venue frames on disk: `raw/{venue}/YYYY-MM-DD/HH.jsonl.zst`, one file per venue and hour.

Each line is `[ts_recv_ns, frame]` (JSON; a binary frame is `[ts, latin-1 text, 1]`). Every flush
appends one complete, independent zstd frame and fsyncs it, so a crash can only leave a torn
last frame: `read_frames` stops there, and everything flushed before it stays readable.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
import zstandard

from quantsaas.store.layout import NS

RawFrame = tuple[str, str | bytes, int]
"""(venue, frame, ts_recv ns), as the WsFeed taps deliver it."""


def raw_path(root: Path, venue: str, ts_ns: int) -> Path:
    moment = dt.datetime.fromtimestamp(ts_ns // NS, tz=dt.UTC)
    return root / "raw" / venue / moment.strftime("%Y-%m-%d") / moment.strftime("%H.jsonl.zst")


def encode_lines(frames: Sequence[RawFrame]) -> bytes:
    lines = []
    for _, frame, ts_recv in frames:
        if isinstance(frame, bytes):
            lines.append(orjson.dumps([ts_recv, frame.decode("latin-1"), 1]))
        else:
            lines.append(orjson.dumps([ts_recv, frame]))
    return b"\n".join(lines) + b"\n"


def append_frames(path: Path, frames: Sequence[RawFrame], level: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = zstandard.ZstdCompressor(level=level).compress(encode_lines(frames))
    with open(path, "ab") as sink:
        sink.write(block)
        sink.flush()
        os.fsync(sink.fileno())


def read_frames(path: Path) -> Iterator[tuple[int, str | bytes]]:
    """(ts_recv, frame) of every complete line; a torn final zstd frame is ignored."""
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
        try:
            decompressor = zstandard.ZstdDecompressor().decompressobj()
            text = decompressor.decompress(data[offset:])
        except zstandard.ZstdError:
            return
        if not decompressor.eof:
            return  # torn last frame
        consumed = len(data) - offset - len(decompressor.unused_data)
        offset += consumed
        for line in text.splitlines():
            if line:
                item = orjson.loads(line)
                frame: str | bytes = item[1].encode("latin-1") if len(item) > 2 else item[1]
                yield int(item[0]), frame


def raw_files(root: Path, venue: str, start_ns: int, end_ns: int) -> list[Path]:
    """The hour files of `venue` that may hold frames received in [start_ns, end_ns]."""
    hour = 3600 * NS
    first = raw_path(root, venue, max(0, start_ns - start_ns % hour))
    last = raw_path(root, venue, max(0, end_ns))
    return [
        path
        for path in sorted((root / "raw" / venue).glob("*/*.jsonl.zst"))
        if _hour_key(first) <= _hour_key(path) <= _hour_key(last)
    ]


def _hour_key(path: Path) -> tuple[str, str]:
    return (path.parent.name, path.name)
