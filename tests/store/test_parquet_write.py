"""Our Parquet writer: PyArrow and DuckDB read its files exactly as written, statistics and
metadata included, and they mix with PyArrow-written files in compaction."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers import make_instrument
from quantsaas.errors import StorageError
from quantsaas.model import Side, Trade
from quantsaas.store import maintenance
from quantsaas.store.columns import to_rows, write_rows
from quantsaas.store.history import HistoryStore
from quantsaas.store.layout import (
    INT8,
    INT64,
    META_KEY,
    SCHEMAS,
    STRING,
    TRADES,
    instrument_meta,
    partition_dir,
    read_instrument,
    with_instrument,
    write_atomic,
)
from quantsaas.store.parquet_write import parquet_bytes
from quantsaas.store.recorder import Recorder, RecorderConfig

I64 = np.iinfo(np.int64)


def write(path: Path, columns: list[tuple[str, str, object]], rows: int) -> Path:
    path.write_bytes(parquet_bytes(columns, rows, {b"k": b"v", b"empty": b""}))
    return path


def query(sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect() as con:
        return con.execute(sql).fetchall()


def test_pyarrow_and_duckdb_read_every_value_null_and_statistic(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    n = 70_000  # page sizes and run lengths past one varint byte
    big = np.concatenate([[I64.min, I64.max, 0, -1], rng.integers(I64.min, I64.max, n - 4)])
    small = rng.integers(-128, 128, n).astype(np.int8)
    texts = [None if i % 7 == 0 else f"t{i}-é€🙂" if i % 5 else "" for i in range(n)]
    path = write(
        tmp_path / "a.parquet",
        [("big", INT64, big), ("small", INT8, small), ("text", STRING, texts)],
        n,
    )
    table = pq.read_table(path)
    assert table.schema == pa.schema(
        [("big", pa.int64()), ("small", pa.int8()), ("text", pa.string())]
    )
    assert table.schema.metadata == {b"k": b"v", b"empty": b""}
    assert table.column("big").to_numpy().tolist() == big.tolist()
    assert table.column("small").to_numpy().tolist() == small.tolist()
    assert table.column("text").to_pylist() == texts
    stats = pq.read_metadata(path).row_group(0)
    assert (stats.column(0).statistics.min, stats.column(0).statistics.max) == (I64.min, I64.max)
    assert (stats.column(1).statistics.min, stats.column(1).statistics.max) == (
        int(small.min()),
        int(small.max()),
    )
    assert stats.column(2).statistics.null_count == sum(t is None for t in texts)
    got = query(
        f"SELECT count(*), sum(small::BIGINT), count(text) FROM read_parquet('{path}')"
        " WHERE big > 0"
    )[0]
    positive = big > 0
    assert got == (
        int(positive.sum()),
        int(small[positive].astype(np.int64).sum()),
        sum(t is not None for t, p in zip(texts, positive.tolist(), strict=True) if p),
    )


def test_statistics_let_duckdb_skip_a_file_and_still_answer_right(tmp_path: Path) -> None:
    low = write(tmp_path / "low.parquet", [("ts", INT64, np.arange(0, 100))], 100)
    high = write(tmp_path / "high.parquet", [("ts", INT64, np.arange(1000, 1100))], 100)
    sql = f"SELECT min(ts), count(*) FROM read_parquet(['{low}', '{high}']) WHERE ts >= 1050"
    assert query(sql) == [(1050, 50)]


def test_zero_rows_and_bad_columns(tmp_path: Path) -> None:
    empty = write(tmp_path / "e.parquet", [("a", INT64, np.array([], dtype=np.int64))], 0)
    assert pq.read_table(empty).num_rows == 0
    with pytest.raises(StorageError, match="has 2 values, not 3"):
        parquet_bytes([("a", INT64, np.arange(2))], 3, {})


def test_recorded_parts_compact_with_pyarrow_written_ones(tmp_path: Path) -> None:
    """A data directory recorded by an older version (PyArrow parts) and this one (ours)."""
    instrument = make_instrument()
    trades = [
        Trade(
            instrument, 100 + i, 1_000 + i, Side.BUY if i % 2 else Side.SELL, str(i), i + 1, i + 2
        )
        for i in range(40)
    ]
    [(_, _, _, old)] = list(to_rows(trades[:20], 0))
    [(_, _, _, new)] = list(to_rows(trades[20:], 20))
    directory = partition_dir(tmp_path, TRADES, instrument.venue, instrument.symbol, "1970-01-01")
    write_atomic(with_instrument(old.to_arrow(), instrument), directory / "5-0.part.parquet")
    write_rows(new, instrument, directory / "5-20.part.parquet")
    assert pq.read_schema(directory / "5-20.part.parquet").remove_metadata() == SCHEMAS[TRADES]
    assert read_instrument(directory / "5-20.part.parquet") == instrument
    store = HistoryStore(tmp_path)
    before = store.trades(instrument, 0, 2**62, limit=100).trades
    assert before == trades
    assert maintenance.has_work(tmp_path, current_slot=6)
    maintenance.compact_in_child(tmp_path, current_slot=6)
    assert sorted(p.name for p in directory.iterdir()) == ["5.parquet"]
    assert store.trades(instrument, 0, 2**62, limit=100).trades == trades
    assert pq.read_schema(directory / "5.parquet").metadata[META_KEY] == instrument_meta(instrument)
    assert not maintenance.has_work(tmp_path, current_slot=6)  # rollup built, nothing left


def test_a_failing_compaction_is_reported_and_recording_goes_on(tmp_path: Path) -> None:
    instrument = make_instrument()
    directory = partition_dir(tmp_path, TRADES, instrument.venue, instrument.symbol, "1970-01-01")
    directory.mkdir(parents=True)
    (directory / "1-0.part.parquet").write_bytes(b"PAR1 not parquet at all")
    recorder = Recorder(RecorderConfig(tmp_path))
    recorder.maintain()
    health = recorder.health()
    assert health["errors"] == 1 and "compaction exited with 1" in health["last_error"]
    assert str(tmp_path) not in health["last_error"] and len(health["last_error"]) < 300
    recorder.on_event(Trade(instrument, 1, 2, Side.BUY, "x", 3, 4))
    assert recorder.flush() == 1
