"""History queries with DuckDB over the recorded Parquet files (layout.py).

Trades in a time range (paged by a `(ts_event, rec)` cursor), OHLCV candles of any interval from
1 s to 1 d built from trades exactly as `analytics.candles` builds them (open and close by
recording order, exact integer sums), and the book at any instant: the last snapshot at or
before T plus the deltas after it. Time ranges are half-open [start, end) of venue time
(`ts_event`, ns). Only the partitions of the dates a range touches are read.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantsaas.analytics.candles import Candle
from quantsaas.errors import ConfigError, StorageError, UnknownInstrument, quote
from quantsaas.model import BookSnapshot, Instrument, Side, Trade
from quantsaas.store.layout import (
    ASK,
    BID,
    BOOK,
    BOOK_CHECKPOINT,
    BOOK_DELTA,
    DAY_NS,
    NS,
    SIDE_BUY,
    TRADES,
    data_files,
    files_for,
    read_instrument,
    symbol_dirs,
)
from quantsaas.store.rollup import ROLLUP, SECOND, candle_sql, split_covered
from quantsaas.symbols import resolve

if TYPE_CHECKING:
    import pyarrow as pa

MIN_INTERVAL_NS, MAX_INTERVAL_NS = NS, 86_400 * NS
CATALOGUE_KINDS = (TRADES, BOOK, ROLLUP)
"""Where instruments are found: ROLLUP holds imported klines (store/importer_binance.py)."""
_UNITS = {"s": NS, "m": 60 * NS, "h": 3600 * NS, "d": 86_400 * NS}
_INTERVAL = re.compile(r"^(\d{1,6})([smhd])$")


def parse_interval(text: str) -> int:
    """`1s`, `15s`, `5m`, `4h`, `1d` ... -> ns, within 1 s .. 1 d."""
    match = _INTERVAL.match(text.strip())
    if not match:
        raise ConfigError(f"bad interval {text!r}: write a number and s, m, h or d (e.g. 5m)")
    width = int(match.group(1)) * _UNITS[match.group(2)]
    if not MIN_INTERVAL_NS <= width <= MAX_INTERVAL_NS:
        raise ConfigError(f"interval {text!r} must be between 1s and 1d")
    return width


def _ascii_digits(text: str) -> bool:
    """Only 0-9 (`str.isdigit` also accepts "9³", which `int` refuses)."""
    return text.isascii() and text.isdigit()


MAX_TIME_NS = 2**63 - 1
"""The last representable time: recorded times are int64 nanoseconds (2262-04-11T23:47:16Z)."""
_MAX_DIGITS = len(str(MAX_TIME_NS))


def parse_time(text: str) -> int:
    """Integer nanoseconds since the epoch, or ISO 8601 (`2026-11-25T17:00:00Z`, naive = UTC),
    between the epoch and MAX_TIME_NS: anything else is a ConfigError (a 400 at the API), never
    a date the calendar code cannot hold (year 11476 used to be a 500)."""
    body = text.strip()
    if _ascii_digits(body):
        value = int(body) if len(body) <= _MAX_DIGITS + 1 else MAX_TIME_NS + 1
    else:
        try:
            moment = dt.datetime.fromisoformat(body.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"bad time {text[:60]!r}: use ISO 8601 or integer nanoseconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        value = (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000
    if not 0 <= value <= MAX_TIME_NS:
        raise ConfigError(
            f"time {text[:60]!r} out of range: 1970-01-01 .. 2262-04-11 (0 .. {MAX_TIME_NS} ns)"
        )
    return value


@dataclass(frozen=True)
class TradePage:
    trades: list[Trade]
    next_cursor: str | None
    """Pass as `after` for the next page; None when the range is exhausted."""


def format_cursor(ts_event: int, rec: int) -> str:
    """The cursor after the trade stored at (ts_event, rec): the `after` of the next page."""
    return f"{ts_event}_{rec}"


def parse_cursor(text: str) -> tuple[int, int]:
    ts, sep, rec = text.partition("_")
    if not sep or not _ascii_digits(ts) or not _ascii_digits(rec):
        raise ConfigError(f"bad cursor {text[:60]!r}")
    if len(ts) > _MAX_DIGITS or len(rec) > _MAX_DIGITS or max(int(ts), int(rec)) > MAX_TIME_NS:
        raise ConfigError(f"bad cursor {text[:60]!r}: out of range")
    return int(ts), int(rec)


class HistoryStore:
    """Read side of the store rooted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._known: dict[Path, Instrument] = {}

    # -- catalogue ---------------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        """Every instrument with trades, book messages or imported klines (rollups)."""
        found: dict[tuple[str, str], Instrument] = {}
        for kind in CATALOGUE_KINDS:
            for venue, symbol, directory in symbol_dirs(self.root, kind):
                if (venue, symbol) in found:
                    continue
                instrument = _first_instrument(directory)
                if instrument is not None:
                    found[(venue, symbol)] = instrument
        return list(found.values())

    def instrument(self, venue: str, symbol: str) -> Instrument:
        """The recorded instrument of `venue` that `symbol` names (any listed spelling:
        quantsaas.symbols)."""
        try:
            return resolve(self._recorded(venue), symbol, venue)[0]
        except UnknownInstrument:
            raise UnknownInstrument(f"no history for {quote(venue)} {quote(symbol)}") from None

    def _recorded(self, venue: str) -> list[Instrument]:
        """The instruments recorded (or imported) on `venue`, each read once from the metadata
        of its first file that has it (rollups built from recorded trades have none)."""
        found: dict[str, Instrument] = {}
        for kind in CATALOGUE_KINDS:
            for directory in sorted((self.root / kind / f"venue={venue}").glob("symbol=*")):
                if directory.name in found:
                    continue
                known = self._known.get(directory) or _first_instrument(directory)
                if known is None:
                    continue
                found[directory.name] = self._known[directory] = known
        return list(found.values())

    # -- queries -----------------------------------------------------------------------------

    def _files(self, kind: str, instrument: Instrument, start: int, end: int) -> list[str]:
        found = files_for(self.root, kind, instrument.key, start, max(start, end - 1))
        return [str(path) for path in found]

    def _query(self, sql: str, files: list[str], relist: bool = True, **params: Any) -> pa.Table:
        """Run `sql` over `files`; if compaction replaced some meanwhile, list them again
        (`relist`), else raise StorageError. DuckDB is imported here, by the first query."""
        import duckdb

        for attempt in range(3):
            try:
                given = {"files": files, **params}
                bound = {k: v for k, v in given.items() if re.search(rf"\${k}\b", sql)}
                with duckdb.connect() as con:
                    return con.sql(sql, params=bound).to_arrow_table()
            except duckdb.IOException as exc:
                if attempt == 2 or not relist:
                    raise StorageError(f"cannot read the history files: {exc}") from None
                directories = sorted({Path(name).parent for name in files})
                files = [str(path) for d in directories for path in data_files(d)]
        raise AssertionError("unreachable")

    def trades_table(
        self,
        instrument: Instrument,
        start: int,
        end: int,
        limit: int | None = None,
        after: tuple[int, int] | None = None,
    ) -> pa.Table:
        """Stored trade rows (raw columns) in [start, end), by (ts_event, rec)."""
        files = self._files(TRADES, instrument, start, end)
        if not files:
            return _empty_table()
        ts, rec = after if after is not None else (start - 1, -1)
        sql = (
            "SELECT ts_event, ts_recv, rec, price, size, side, trade_id FROM read_parquet($files)"
            " WHERE ts_event >= $start AND ts_event < $end"
            " AND (ts_event > $ts OR (ts_event = $ts AND rec > $rec))"
            " ORDER BY ts_event, rec"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._query(sql, files, start=start, end=end, ts=ts, rec=rec)

    def trades(
        self,
        instrument: Instrument,
        start: int,
        end: int,
        limit: int = 1000,
        after: tuple[int, int] | None = None,
    ) -> TradePage:
        table = self.trades_table(instrument, start, end, limit + 1, after)
        rows = table.to_pylist() if table.num_columns else []
        trades = [trade_from_row(instrument, row) for row in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            cursor = format_cursor(last["ts_event"], last["rec"])
        return TradePage(trades, cursor)

    def candles(
        self,
        instrument: Instrument,
        interval: str,
        start: int,
        end: int,
        until_ns: int,
        limit: int | None = None,
    ) -> list[Candle]:
        """The first `limit` candles of [start, end) (aligned to the epoch); a candle is closed
        if it ends by `until_ns`."""
        width = parse_interval(interval)
        for attempt in range(3):
            trades = self._files(TRADES, instrument, start, end)
            aligned = start % SECOND == 0 and end % SECOND == 0
            rollups = self._files(ROLLUP, instrument, start, end) if aligned else []
            trades = split_covered(trades, rollups)
            if not trades and not rollups:
                return []
            sql = candle_sql(bool(trades), bool(rollups), limit)
            params = {"rollups": rollups, "w": width, "start": start, "end": end}
            try:
                table = self._query(sql, trades, relist=False, **params)
                break
            except StorageError:
                if attempt == 2:  # compaction kept replacing files under us
                    raise
        return [
            Candle(
                instrument,
                interval,
                int(row["bucket"]),
                int(row["o"]),
                int(row["h"]),
                int(row["l"]),
                int(row["c"]),
                int(row["v"]),
                int(row["bv"]),
                int(row["notional"]),
                int(row["n"]),
                int(row["bucket"]) + width <= until_ns,
                int(row["te"]),
                int(row["tr"]),
            )
            for row in table.to_pylist()
        ]

    def book_at(self, instrument: Instrument, at_ns: int, depth: int | None = None) -> BookSnapshot:
        """The book as it was after the last message with ts_event <= at_ns."""
        files = self._files(BOOK, instrument, at_ns - DAY_NS, at_ns + 1)
        sql = (
            "WITH last AS (SELECT max(rec) AS r FROM read_parquet($files)"
            f" WHERE kind <> {BOOK_DELTA} AND ts_event <= $t)"
            " SELECT rec, kind, side, price, size, seq, ts_event, ts_recv FROM read_parquet($files)"
            " WHERE ts_event <= $t AND rec >= (SELECT r FROM last)"
            f" AND (kind = {BOOK_DELTA} OR rec = (SELECT r FROM last)) ORDER BY rec"
        )
        table = self._query(sql, files, t=at_ns) if files else _empty_table()
        if not table.num_rows:
            raise StorageError(
                f"no book snapshot of {instrument.venue} {instrument.symbol} by then"
            )
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        columns = [table.column(name).to_pylist() for name in ("side", "price", "size")]
        for side, price, size in zip(*columns, strict=True):
            levels = bids if side == BID else asks if side == ASK else None
            if levels is None:
                continue
            if size:
                levels[price] = size
            else:
                levels.pop(price, None)
        last = {name: table.column(name)[-1].as_py() for name in ("seq", "ts_event", "ts_recv")}
        return BookSnapshot(
            instrument,
            tuple(sorted(bids.items(), reverse=True)[:depth]),
            tuple(sorted(asks.items())[:depth]),
            last["seq"],
            last["ts_event"],
            last["ts_recv"],
        )

    def book_series(
        self, instrument: Instrument, start: int, end: int, step: int, depth: int | None = None
    ) -> list[BookSnapshot]:
        """The book at start, start + step, ... (before end), each as `book_at` would give it;
        instants before the first recorded snapshot are left out. One query for all of them:
        the rows from the last snapshot at or before `start` are replayed once."""
        if step <= 0 or end <= start:
            return []
        table = self.book_rows(instrument, start, end)
        if not table.num_rows:
            return []
        names = ("rec", "kind", "side", "price", "size", "seq", "ts_event")
        rows = zip(*(table.column(name).to_pylist() for name in names), strict=True)
        bids: dict[int, int] = {}
        asks: dict[int, int] = {}
        out: list[BookSnapshot] = []
        at, message, seq, known = start, None, 0, False

        def sample(until: int) -> None:
            nonlocal at
            while at < end and at < until:
                if known:
                    top_bids = tuple(sorted(bids.items(), reverse=True)[:depth])
                    top_asks = tuple(sorted(asks.items())[:depth])
                    out.append(BookSnapshot(instrument, top_bids, top_asks, seq, at, at))
                at += step

        for rec, kind, side, price, size, row_seq, ts_event in rows:
            if rec != message:  # a new message: the instants before it see the book so far
                sample(ts_event)
                message, seq = rec, row_seq
                if kind != BOOK_DELTA:
                    bids.clear()
                    asks.clear()
                    known = True
            levels = bids if side == BID else asks if side == ASK else None
            if levels is not None:
                if size:
                    levels[price] = size
                else:
                    levels.pop(price, None)
        sample(end)
        return out

    def book_rows(
        self, instrument: Instrument, start: int, end: int, from_snapshot: bool = True
    ) -> pa.Table:
        """Book rows for replay, by recording order. `from_snapshot`: from the last snapshot at
        or before `start` up to `end`; else the venue's messages with ts_event in [start, end)
        (a window after the first one: no checkpoints, the book is already built)."""
        files = self._files(BOOK, instrument, start - DAY_NS if from_snapshot else start, end)
        if not files:
            return _empty_table()
        columns = "rec, kind, side, price, size, seq, ts_event, ts_recv"
        if not from_snapshot:
            sql = (
                f"SELECT {columns} FROM read_parquet($files) WHERE ts_event >= $start"
                f" AND ts_event < $end AND kind <> {BOOK_CHECKPOINT} ORDER BY rec"
            )
            return self._query(sql, files, start=start, end=end)
        sql = (
            "WITH first AS (SELECT coalesce(max(rec), 0) AS r FROM read_parquet($files)"
            f" WHERE kind <> {BOOK_DELTA} AND ts_event <= $start)"
            f" SELECT {columns} FROM read_parquet($files)"
            " WHERE rec >= (SELECT r FROM first) AND ts_event < $end ORDER BY rec"
        )
        return self._query(sql, files, start=start, end=end)

    def extent(self, instruments: Sequence[Instrument], start: int, end: int) -> tuple[int, int]:
        """(first, last) ts_event recorded in [start, end) for `instruments`; (0, -1) if none."""
        files = [
            name
            for instrument in instruments
            for kind in (TRADES, BOOK)
            for name in self._files(kind, instrument, start, end)
        ]
        if not files:
            return 0, -1
        sql = (
            "SELECT coalesce(min(ts_event), 0) AS a, coalesce(max(ts_event), -1) AS b"
            " FROM read_parquet($files, union_by_name = true)"
            " WHERE ts_event >= $start AND ts_event < $end"
        )
        row = self._query(sql, files, start=start, end=end).to_pylist()[0]
        return int(row["a"]), int(row["b"])


def _empty_table() -> pa.Table:
    import pyarrow as pa

    return pa.table({})


def _first_instrument(directory: Path) -> Instrument | None:
    for path in sorted(directory.glob("date=*/*.parquet")):
        instrument = _instrument_of(path)
        if instrument is not None:
            return instrument
    return None


def _instrument_of(path: Path) -> Instrument | None:
    """The instrument in a file's metadata (rollups built from recorded trades have none)."""
    try:
        return read_instrument(path)
    except KeyError:
        return None


def trade_from_row(instrument: Instrument, row: dict[str, Any]) -> Trade:
    return Trade(
        instrument,
        row["price"],
        row["size"],
        Side.BUY if row["side"] == SIDE_BUY else Side.SELL,
        row["trade_id"],
        row["ts_event"],
        row["ts_recv"],
    )
