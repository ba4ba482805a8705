"""`quantsaas import`: public market-data files into the history store, exactly.

What every importer shares (importer_tardis.py and importer_binance.py hold the layouts):
* **reading**: CSV streamed in blocks with pyarrow, plain, `.gz` or `.zip` (the first member),
  every column as text, so no number ever passes through a float;
* **exact numbers**: decimal text -> int64 at the instrument's scale, vectorised
  (`fixed_column`): digits only, at most MAX_DIGITS significant digits, extra decimals must be
  zeros (as `model.parse_fixed`);
* **bad rows**: a row with the wrong number of fields, a number that is not exact decimal text,
  an implausible time or an unknown side is counted and reported with its file and line
  (`Report`), never a crash and never a silent skip; the good rows are imported;
* **writing**: the recorder's tables (layout.py schemas, `rec` = time-ordered so a replay and
  `book_at` order imported rows like recorded ones), one file per (kind, instrument, UTC day,
  source file): `{kind}/venue=/symbol=/date=/imp{hash}{n}.parquet`, written whole and
  renamed (`write_atomic`). Importing the same file again replaces its files, nothing doubles.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from quantsaas.errors import ConfigError
from quantsaas.model import Instrument
from quantsaas.store.layout import DAY_NS, partition_dir, with_instrument, write_atomic

MAX_DIGITS = 18
"""Significant digits of an imported number: int64 holds every 18-digit integer."""
MAX_SCALE = 12
MAX_DETAILS = 100
"""Bad rows described one by one in a report; the rest are counted."""
BLOCK = 8 << 20
_NUMBER = r"^([0-9]{1,18}(\.[0-9]{0,30})?|\.[0-9]{1,30})$"
EARLIEST_NS = 946_684_800 * 10**9
LATEST_NS = 4_102_444_800 * 10**9
"""Imported times must fall in [2000-01-01, 2100-01-01)."""


@dataclass
class Report:
    """What one file's import did: rows read, written, and every bad row by line."""

    path: str
    rows: int = 0
    written: dict[str, int] = field(default_factory=dict)
    bad: int = 0
    details: list[tuple[int, str]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def add_bad(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append((line, reason[:160]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "rows": self.rows,
            "written": self.written,
            "bad_rows": self.bad,
            "bad": [{"line": line, "reason": reason} for line, reason in sorted(self.details)],
        }


def open_text(path: Path) -> IO[bytes]:
    """A binary stream of the CSV inside `path` (.gz and .zip decompressed as it is read)."""
    if not path.is_file():
        raise ConfigError(f"no such file: {str(path)[:100]}")
    name = path.name.lower()
    if name.endswith(".gz"):
        return cast(IO[bytes], gzip.open(path, "rb"))
    if name.endswith(".zip"):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise ConfigError(f"{path.name}: not a zip archive: {exc}") from None
        members = [m for m in archive.namelist() if not m.endswith("/")]
        if not members:
            archive.close()
            raise ConfigError(f"{path.name}: empty zip archive")
        return io.BufferedReader(_Closing(archive.open(members[0]), archive))
    return open(path, "rb")


class _Closing(io.RawIOBase):
    """A zip member's stream that closes its archive too."""

    def __init__(self, inner: IO[bytes], archive: zipfile.ZipFile) -> None:
        self.inner, self.archive = inner, archive

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.inner.close()
            self.archive.close()
        super().close()


def first_line(stream: IO[bytes]) -> bytes:
    """Peek at the first line (the stream must be re-opened afterwards)."""
    return stream.readline(4096)


class CsvReader:
    """Blocks of a CSV as string columns, with the physical line number of every row."""

    def __init__(
        self, path: Path, names: list[str], header: bool, report: Report, check: bool = True
    ) -> None:
        self.path = path
        self.names = names
        self.header = header
        self.check = check
        """Whether the header must name exactly `names` (Tardis); Binance's is only skipped."""
        self.report = report
        self.invalid: list[int] = []
        self.rows_before = 0

    def _invalid(self, row: Any) -> str:
        line = int(row.number) if row.number is not None else -1
        self.invalid.append(line)
        self.report.rows += 1
        self.report.add_bad(
            line, f"{row.actual_columns} fields, expected {row.expected_columns}: {row.text[:60]!r}"
        )
        return "skip"

    def check_header(self) -> bool:
        """A file with a header must have exactly the columns of its layout; False when the
        file cannot even be read (reported as a bad row at line 1)."""
        try:
            with open_text(self.path) as stream:
                line = stream.readline(65536).decode("utf-8", "replace").strip()
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            self.report.add_bad(1, f"unreadable: {exc}")
            return False
        if not line:
            return True
        found = [name.strip().strip('"') for name in line.split(",")]
        if found != self.names:
            raise ConfigError(
                f"{self.path.name}: the header is not the expected layout: got "
                f"{','.join(found)[:100]!r}, expected {','.join(self.names)[:100]!r}"
            )
        return True

    def batches(self) -> Iterator[tuple[pa.RecordBatch, int]]:
        """(batch, index of its first row among all rows read)."""
        if self.header and self.check and not self.check_header():
            return
        read = pcsv.ReadOptions(
            use_threads=False,
            block_size=BLOCK,
            column_names=self.names,
            skip_rows=1 if self.header else 0,
        )
        parse = pcsv.ParseOptions(invalid_row_handler=self._invalid, ignore_empty_lines=False)
        convert = pcsv.ConvertOptions(
            column_types=dict.fromkeys(self.names, pa.string()), strings_can_be_null=False
        )
        with open_text(self.path) as stream:
            try:
                reader = pcsv.open_csv(
                    stream, read_options=read, parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as exc:
                if "Empty CSV file" in str(exc):
                    return
                raise ConfigError(f"{self.path.name}: not a CSV file: {exc}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                self.report.add_bad(1, f"unreadable: {exc}")
                return
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except (pa.ArrowInvalid, OSError, EOFError, zipfile.BadZipFile) as exc:
                    line = self.line_of(self.rows_before)
                    self.report.add_bad(line, f"unreadable from here on: {exc}")
                    return
                start = self.rows_before
                self.rows_before += batch.num_rows
                self.report.rows += batch.num_rows
                yield batch, start

    def line_of(self, row: int) -> int:
        """Physical line number (1-based) of the `row`-th good row, counting skipped lines."""
        first = 2 if self.header else 1
        invalid = self.invalid
        line = first + row
        while True:
            moved = first + row + bisect.bisect_right(invalid, line)
            if moved == line:
                return line
            line = moved


def fixed_column(text: pa.Array, scale: int, signed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Decimal text -> (int64 raw values at `scale`, ok mask). Exact, nothing is rounded:
    more than `scale` decimals is an error unless the extra digits are zeros (as
    `model.parse_fixed`). A block Arrow's decimal parser accepts whole takes that fast path;
    a block with a bad value is checked value by value (digits joined, cast as integers)."""
    fast = _fast_fixed(text, scale, signed)
    if fast is not None:
        return fast
    safe, ok, negative = _digits(text, scale, signed, MAX_DIGITS)
    values = pc.cast(safe, pa.int64()).to_numpy(zero_copy_only=False)
    if negative is not None:
        values = np.where(negative.to_numpy(zero_copy_only=False), -values, values)
    return values, ok


_LIMIT = 10**MAX_DIGITS


def _fast_fixed(text: pa.Array, scale: int, signed: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Arrow's own exact decimal parser (decimal128 at `scale`; it refuses the whole block if
    any value is not a decimal or has non-zero digits below the scale), then the raw int64
    read from the 128-bit words: a value fits when its high word is the low word's sign.
    None when Arrow refused the block: the caller checks value by value."""
    try:
        parsed = pc.cast(text, pa.decimal128(38, scale))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    words = np.frombuffer(parsed.buffers()[1], dtype=np.int64)
    words = words[2 * parsed.offset : 2 * (parsed.offset + len(parsed))]
    low, high = words[0::2], words[1::2]
    ok = (high == (low >> 63)) & (low < _LIMIT) & (low > -_LIMIT)
    if not signed:
        ok &= low >= 0
    return np.where(ok, low, 0), ok


def wide_column(text: pa.Array, scale: int) -> tuple[pa.Array, np.ndarray]:
    """Like `fixed_column`, up to 38 digits, as decimal128(38, 0) (sums such as a kline's
    quote volume at price_scale + size_scale can outgrow int64)."""
    safe, ok, _ = _digits(text, scale, False, 38)
    return pc.cast(safe, pa.decimal128(38, 0)), ok


def _digits(
    text: pa.Array, scale: int, signed: bool, max_digits: int
) -> tuple[pa.Array, np.ndarray, pa.Array | None]:
    body = text
    negative = None
    if signed:
        negative = pc.starts_with(text, "-")
        body = pc.if_else(negative, pc.utf8_slice_codeunits(text, 1), text)
    valid = pc.match_substring_regex(body, _NUMBER)
    whole = pc.list_element(pc.split_pattern(body, ".", max_splits=1), 0)
    fraction = _fraction(body)
    extra_ok = pc.match_substring_regex(pc.utf8_slice_codeunits(fraction, scale), r"^0*$")
    kept = pc.utf8_rpad(pc.utf8_slice_codeunits(fraction, 0, scale), scale, "0")
    digits = pc.utf8_ltrim(pc.binary_join_element_wise(whole, kept, ""), "0")
    short = pc.less_equal(pc.utf8_length(digits), max_digits)
    ok = pc.and_(pc.and_(valid, extra_ok), short)
    safe = pc.if_else(ok, pc.if_else(pc.equal(digits, ""), "0", digits), "0")
    return safe, ok.to_numpy(zero_copy_only=False), negative


def _fraction(body: pa.Array) -> pa.Array:
    """The digits after the decimal point ("" when there is none)."""
    parts = pc.split_pattern(body, ".", max_splits=1)
    padded = pc.list_slice(parts, 1, 2)
    return pc.fill_null(
        pc.list_element(
            pc.if_else(
                pc.greater(pc.list_value_length(parts), 1),
                padded,
                pa.scalar([""], pa.list_(pa.string())),
            ),
            0,
        ),
        "",
    )


def decimals_in(text: pa.Array) -> int:
    """The most decimals written in a column of decimal text (to infer a scale)."""
    most = pc.max(pc.utf8_length(pc.utf8_rtrim(_fraction(text), "0"))).as_py()
    return int(most or 0)


def time_column(text: pa.Array, unit_ns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integer epoch times -> ns. `unit_ns` fixed (Tardis: microseconds), or None to tell
    milliseconds from microseconds per row by magnitude (Binance changed units in 2025)."""
    raw, ok = fixed_column(text, 0)
    raw = np.where(ok & (raw < 10**17), raw, 0)
    if unit_ns is not None:
        ns = raw * unit_ns
    else:
        ns = np.where(raw >= 10**14, raw * 1000, raw * 1_000_000)
    plausible = (ns >= EARLIEST_NS) & (ns < LATEST_NS)
    return ns, ok & plausible


def time_rec(ts: np.ndarray) -> np.ndarray:
    """Recording order for imported rows: the time itself plus the row's rank among rows with
    the same time (at most 999 apart: imported times are whole microseconds or coarser)."""
    if len(ts) == 0:
        return ts
    index = np.arange(len(ts))
    starts = np.concatenate([[True], ts[1:] != ts[:-1]])
    first = np.maximum.accumulate(np.where(starts, index, 0))
    return ts + np.minimum(index - first, 999)


class Writer:
    """Collects tables per (kind, UTC day) and writes each day's files once the day is done."""

    def __init__(self, root: Path, instrument: Instrument, source: Path, report: Report):
        self.root = root
        self.instrument = instrument
        self.tag = "imp" + hashlib.sha256(source.name.encode()).hexdigest()[:10]
        self.report = report
        self.pending: dict[tuple[str, int], list[pa.Table]] = {}
        self.counts: dict[tuple[str, int], int] = {}
        self.cleared: set[tuple[str, int]] = set()

    def add(self, kind: str, table: pa.Table, ts_column: str = "ts_event") -> None:
        if not table.num_rows:
            return
        days = table.column(ts_column).to_numpy() // DAY_NS
        for day in np.unique(days):
            part = table if days.min() == days.max() else table.filter(pa.array(days == day))
            key = (kind, int(day))
            self.pending.setdefault(key, []).append(part)
            if sum(t.num_rows for t in self.pending[key]) >= 2_000_000:
                self.flush_day(key)

    def flush_day(self, key: tuple[str, int], name: str | None = None) -> None:
        """Write what is held for one (kind, day), as `name` if given."""
        tables = self.pending.pop(key, [])
        if not tables:
            return
        kind, day = key
        instrument = self.instrument
        date = _date(day)
        directory = partition_dir(self.root, kind, instrument.venue, instrument.symbol, date)
        if key not in self.cleared:  # importing a file again replaces what it wrote before
            self.cleared.add(key)
            if directory.is_dir():
                for old in directory.glob(f"{self.tag}*.parquet"):
                    old.unlink()
        index = self.counts.get(key, 0)
        self.counts[key] = index + 1
        table = pa.concat_tables(tables)
        path = directory / (name or f"{self.tag}{index}.parquet")
        write_atomic(with_instrument(table, instrument), path)
        self.report.written[kind] = self.report.written.get(kind, 0) + table.num_rows
        self.report.files.append(str(path))

    def close(self) -> None:
        for key in sorted(self.pending):
            self.flush_day(key)


def _date(day: int) -> str:
    import datetime as dt

    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def bad_rows(
    reader: CsvReader, start: int, ok: np.ndarray, reasons: list[tuple[np.ndarray, str]]
) -> None:
    """Report every row of a batch where `ok` is False, with the first reason that applies."""
    for index in np.flatnonzero(~ok).tolist():
        reason = next((text for mask, text in reasons if not mask[index]), "bad row")
        reader.report.add_bad(reader.line_of(start + index), reason)
