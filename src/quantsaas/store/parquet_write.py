"""Parquet files for the recorder's flat columns, written with NumPy and zstandard, no PyArrow.

Why: PyArrow costs a serving process about 45 MiB of RSS (bench/README.md, footprint), and the
recorder only ever writes two flat schemas of int64, int8 and UTF-8 string columns. This module
writes exactly that subset of the format (apache/parquet-format), which PyArrow and DuckDB read
like their own files: one row group; per column one v1 data page, PLAIN values, definition
levels in the RLE/bit-packing hybrid (every column OPTIONAL, as PyArrow writes nullable Arrow
fields), zstd pages; min/max statistics on the integer columns (DuckDB skips files by them);
the footer in the Thrift compact protocol with the key-value metadata (the instrument).
The column kinds are layout.py's; `columns.write_rows` writes the file with `layout.atomic_file`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zstandard

from quantsaas import __version__
from quantsaas.errors import StorageError
from quantsaas.store.layout import INT8, INT64, STRING

_PHYSICAL = {INT64: 2, INT8: 1, STRING: 6}  # parquet Type: INT64, INT32, BYTE_ARRAY
_OPTIONAL = 1
_UTF8, _INT_8 = 0, 15  # ConvertedType
_PLAIN, _RLE = 0, 3  # Encoding
_ZSTD = 6  # CompressionCodec
_DATA_PAGE = 0
_MAX_PAGE = 2**31 - 1
_ZSTD_LEVEL = 1
"""The level PyArrow's zstd defaults to: the writer runs every flush_s, speed first."""

# Thrift compact protocol type ids
_TRUE, _FALSE, _BYTE, _I32, _I64, _BINARY, _LIST, _STRUCT = 1, 2, 3, 5, 6, 8, 9, 12


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


class _Thrift:
    """A Thrift compact-protocol encoder for the structs of a Parquet footer and page header."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._last = [0]

    def _field(self, fid: int, ctype: int) -> None:
        delta = fid - self._last[-1]
        if 0 < delta <= 15:
            self.out.append(delta << 4 | ctype)
        else:
            self.out.append(ctype)
            self.out += _varint(_zigzag(fid))
        self._last[-1] = fid

    def i32(self, fid: int, value: int) -> None:
        self._field(fid, _I32)
        self.out += _varint(_zigzag(value))

    def i64(self, fid: int, value: int) -> None:
        self._field(fid, _I64)
        self.out += _varint(_zigzag(value))

    def byte(self, fid: int, value: int) -> None:
        self._field(fid, _BYTE)
        self.out.append(value & 0xFF)

    def boolean(self, fid: int, value: bool) -> None:
        self._field(fid, _TRUE if value else _FALSE)

    def binary(self, fid: int, value: bytes) -> None:
        self._field(fid, _BINARY)
        self.out += _varint(len(value)) + value

    def begin(self, fid: int) -> None:
        """A struct field; close it with `end`."""
        self._field(fid, _STRUCT)
        self._last.append(0)

    def end(self) -> None:
        self.out.append(0)
        self._last.pop()

    def list(self, fid: int, ctype: int, size: int) -> None:
        """A list field header; the elements follow (`element` for structs)."""
        self._field(fid, _LIST)
        if size < 15:
            self.out.append(size << 4 | ctype)
        else:
            self.out.append(0xF0 | ctype)
            self.out += _varint(size)

    def element(self) -> None:
        """A struct element of a list; close it with `end`."""
        self._last.append(0)


def _levels(present: np.ndarray) -> bytes:
    """Definition levels (1 = a value, 0 = null), bit width 1, as RLE runs, length-prefixed."""
    out = bytearray()
    if present.size:
        edges = np.flatnonzero(present[1:] != present[:-1]) + 1
        starts = np.concatenate(([0], edges))
        ends = np.concatenate((edges, [present.size]))
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            out += _varint((end - start) << 1) + (b"\x01" if present[start] else b"\x00")
    return struct.pack("<I", len(out)) + bytes(out)


def _page(kind: str, values: Any, rows: int) -> tuple[bytes, bytes | None, bytes | None, int]:
    """(uncompressed page body, min, max, null count) of one column."""
    if kind == STRING:
        texts = [None if v is None else v.encode() for v in values]
        present = np.fromiter((t is not None for t in texts), dtype=np.bool_, count=rows)
        body = b"".join(struct.pack("<I", len(t)) + t for t in texts if t is not None)
        return _levels(present) + body, None, None, rows - int(present.sum())
    dtype = "<i8" if kind == INT64 else "<i4"
    array = np.asarray(values).astype(dtype, copy=False)
    levels = _levels(np.ones(rows, dtype=np.bool_))
    if not rows:
        return levels, None, None, 0
    low, high = array.min().tobytes(), array.max().tobytes()
    return levels + array.tobytes(), low, high, 0


def _statistics(out: _Thrift, fid: int, low: bytes | None, high: bytes | None, nulls: int) -> None:
    out.begin(fid)
    out.i64(3, nulls)
    if high is not None and low is not None:
        out.binary(5, high)
        out.binary(6, low)
    out.end()


def parquet_bytes(
    columns: Sequence[tuple[str, str, Any]], rows: int, metadata: Mapping[bytes, bytes]
) -> bytes:
    """A whole Parquet file: `columns` are (name, kind, values), each of `rows` values (a NumPy
    integer array, or a sequence of str or None for STRING); `metadata` its key-value metadata."""
    compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    parts = [b"PAR1"]
    offset = 4
    chunks: list[tuple[str, str, int, int, int, bytes | None, bytes | None, int]] = []
    for name, kind, values in columns:
        if len(values) != rows:
            raise StorageError(f"column {name} has {len(values)} values, not {rows}")
        body, low, high, nulls = _page(kind, values, rows)
        packed = compressor.compress(body)
        if len(body) > _MAX_PAGE:
            raise StorageError(f"column {name}: {len(body)} bytes do not fit one Parquet page")
        header = _Thrift()
        header.i32(1, _DATA_PAGE)
        header.i32(2, len(body))
        header.i32(3, len(packed))
        header.begin(5)
        header.i32(1, rows)
        header.i32(2, _PLAIN)
        header.i32(3, _RLE)
        header.i32(4, _RLE)
        header.end()
        header.out.append(0)
        head = bytes(header.out)
        parts += [head, packed]
        sizes = (len(head) + len(body), len(head) + len(packed))
        chunks.append((name, kind, offset, *sizes, low, high, nulls))
        offset += sizes[1]
    parts.append(_footer(chunks, rows, metadata))
    footer_size = len(parts[-1])
    parts += [struct.pack("<I", footer_size), b"PAR1"]
    return b"".join(parts)


def _footer(
    chunks: list[tuple[str, str, int, int, int, bytes | None, bytes | None, int]],
    rows: int,
    metadata: Mapping[bytes, bytes],
) -> bytes:
    out = _Thrift()
    out.i32(1, 2)  # format version 2: logical types
    out.list(2, _STRUCT, len(chunks) + 1)
    out.element()
    out.binary(4, b"schema")
    out.i32(5, len(chunks))
    out.end()
    for name, kind, *_ in chunks:
        out.element()
        out.i32(1, _PHYSICAL[kind])
        out.i32(3, _OPTIONAL)
        out.binary(4, name.encode())
        if kind != INT64:
            out.i32(6, _UTF8 if kind == STRING else _INT_8)
            out.begin(10)  # LogicalType: STRING (1) or INTEGER (10) {bitWidth 8, signed}
            if kind == STRING:
                out.begin(1)
                out.end()
            else:
                out.begin(10)
                out.byte(1, 8)
                out.boolean(2, True)
                out.end()
            out.end()
        out.end()
    out.i64(3, rows)
    out.list(4, _STRUCT, 1)
    out.element()
    out.list(1, _STRUCT, len(chunks))
    for name, kind, start, plain, packed, low, high, nulls in chunks:
        out.element()
        out.i64(2, start)
        out.begin(3)
        out.i32(1, _PHYSICAL[kind])
        out.list(2, _I32, 2)
        out.out += _varint(_zigzag(_PLAIN)) + _varint(_zigzag(_RLE))
        out.list(3, _BINARY, 1)
        out.out += _varint(len(name.encode())) + name.encode()
        out.i32(4, _ZSTD)
        out.i64(5, rows)
        out.i64(6, plain)
        out.i64(7, packed)
        out.i64(9, start)
        _statistics(out, 12, low, high, nulls)
        out.end()
        out.end()
    out.i64(2, sum(chunk[3] for chunk in chunks))
    out.i64(3, rows)
    out.i64(5, chunks[0][2] if chunks else 4)
    out.i64(6, sum(chunk[4] for chunk in chunks))
    out.end()
    out.list(5, _STRUCT, len(metadata))
    for key, value in metadata.items():
        out.element()
        out.binary(1, key)
        out.binary(2, value)
        out.end()
    out.binary(6, f"quantsaas version {__version__} (parquet_write.py)".encode())
    out.list(7, _STRUCT, len(chunks))
    for _ in chunks:
        out.element()
        out.begin(1)  # TYPE_ORDER: min/max by the column's logical type (signed integers)
        out.end()
        out.end()
    out.out.append(0)
    return bytes(out.out)
