"""1-second OHLCV rollups of compacted trade slots, and the candle SQL that uses them.

When a slot of trades is compacted (maintenance.py), its 1-second candles are written beside
it under `candles1s/venue=/symbol=/date=/{slot}.parquet`: open and close by recording order
(with the first and last `rec` kept, so rollups merge exactly), high, low, exact integer sums
and the stamps of the last trade. A candle query over a range aligned to whole seconds reads the
rollups of compacted slots and the raw trades of the rest (never both for one slot), about
86,400 rows a day instead of every trade; any interval from 1 s to 1 d is a whole number of
seconds, so a second never straddles two candles. Results equal candles built from the trades.
"""

from __future__ import annotations

from pathlib import Path

from quantsaas.store.layout import SIDE_BUY, TRADES, data_files, write_atomic

ROLLUP = "candles1s"
SECOND = 1_000_000_000

_PER_TRADE = (
    f"SELECT ts_event - ts_event % {SECOND} AS sec, price AS o, price AS h, price AS l,"
    " price AS c, rec AS r0, rec AS r1, size::HUGEINT AS v,"
    f" CASE WHEN side = {SIDE_BUY} THEN size::HUGEINT ELSE 0 END AS bv,"
    " price::HUGEINT * size AS notional, 1::HUGEINT AS n, ts_event AS te, ts_recv AS tr"
    " FROM read_parquet($files)"
)
_ROLLED = (
    "SELECT sec, o, h, l, c, r0, r1, v::HUGEINT AS v, bv::HUGEINT AS bv,"
    " notional::HUGEINT AS notional, n::HUGEINT AS n, te, tr FROM read_parquet($rollups)"
)
_MERGE = (
    "arg_min(o, r0) AS o, max(h) AS h, min(l) AS l, arg_max(c, r1) AS c, sum(v) AS v,"
    " sum(bv) AS bv, sum(notional) AS notional, sum(n) AS n, arg_max(te, r1) AS te,"
    " arg_max(tr, r1) AS tr"
)


def candle_sql(trades: bool, rollups: bool, limit: int | None) -> str:
    """Candles of width $w over [$start, $end) from trade files ($files) and/or rollups."""
    parts = []
    if trades:
        parts.append(_PER_TRADE + " WHERE ts_event >= $start AND ts_event < $end")
    if rollups:
        parts.append(_ROLLED + " WHERE sec >= $start AND sec < $end")
    sql = (
        f"SELECT sec - sec % $w AS bucket, {_MERGE} FROM ({' UNION ALL '.join(parts)})"
        " GROUP BY bucket ORDER BY bucket"
    )
    return sql if limit is None else f"{sql} LIMIT {int(limit)}"


def rollup_path(root: Path, trade_file: Path) -> Path:
    return root / ROLLUP / trade_file.relative_to(root / TRADES)


def slot_of(path: Path) -> str:
    return path.name.partition("-")[0].removesuffix(".parquet")


def split_covered(trade_files: list[str], rollup_files: list[str]) -> list[str]:
    """The trade files whose slot has no rollup (a compacted slot's rollup replaces them)."""
    covered = {(Path(name).parent.name, slot_of(Path(name))) for name in rollup_files}
    return [
        name for name in trade_files if (Path(name).parent.name, slot_of(Path(name))) not in covered
    ]


def missing(root: Path) -> list[tuple[Path, Path]]:
    """(compacted trade file, rollup path) of every compacted slot without its rollup yet."""
    found = []
    for directory in (root / TRADES).glob("venue=*/symbol=*/date=*"):
        for trade_file in data_files(directory):
            if "-" in trade_file.name:
                continue  # a part: its slot is not compacted yet
            target = rollup_path(root, trade_file)
            if not target.exists():
                found.append((trade_file, target))
    return found


def build_missing(root: Path) -> int:
    """Write the rollup of every compacted trade slot that has none yet; returns how many."""
    todo = missing(root)
    if not todo:
        return 0
    import duckdb  # here: a maintenance pass with nothing to build loads no DuckDB

    sql = f"SELECT sec, min(r0) AS r0, max(r1) AS r1, {_MERGE} FROM ({_PER_TRADE})"
    sql += " GROUP BY sec ORDER BY sec"
    for trade_file, target in todo:
        with duckdb.connect() as con:
            table = con.sql(sql, params={"files": [str(trade_file)]}).to_arrow_table()
        write_atomic(table, target)
    return len(todo)
