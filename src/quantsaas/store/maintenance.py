"""Store upkeep, run by the recorder's writer thread: compaction of finished slots, retention.

Compaction merges the part files of a finished slot into `{slot}.parquet` (written atomically)
and then deletes the parts; a reader prefers the compacted file, so a crash between the two
steps leaves duplicates on disk but never in query results (the next pass deletes them).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from quantsaas.store import rollup
from quantsaas.store.layout import KINDS, META_KEY, write_atomic


def _partitions(root: Path, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    return [path for kind in kinds for path in (root / kind).glob("venue=*/symbol=*/date=*")]


def compact(root: Path, current_slot: int) -> int:
    """Compact every slot before `current_slot`; returns the number of files compacted."""
    done = 0
    for directory in _partitions(root):
        parts: dict[str, list[Path]] = {}
        for path in directory.glob("*-*.part.parquet"):
            parts.setdefault(path.name.partition("-")[0], []).append(path)
        for slot, paths in parts.items():
            if int(slot) >= current_slot:
                continue
            target = directory / f"{slot}.parquet"
            if not target.exists():
                tables = [pq.read_table(path) for path in sorted(paths)]
                metadata = tables[0].schema.metadata or {}
                merged = pa.concat_tables(tables).sort_by("rec")
                merged = merged.replace_schema_metadata({META_KEY: metadata[META_KEY]})
                write_atomic(merged, target)
            for path in paths:
                path.unlink(missing_ok=True)
            done += len(paths)
    rollup.build_missing(root)
    return done


def apply_retention(root: Path, days: int, now_ns: int) -> int:
    """Delete date partitions (and raw days) older than `days` days; returns how many."""
    today = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, tz=dt.UTC).date()
    cutoff = (today - dt.timedelta(days=days)).isoformat()
    removed = 0
    for directory in _partitions(root, (*KINDS, rollup.ROLLUP)):
        if directory.name.partition("=")[2] < cutoff:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    for directory in (root / "raw").glob("*/*"):
        if directory.is_dir() and directory.name < cutoff:
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    return removed


def recorded_dates(root: Path) -> list[str]:
    """Every UTC date with recorded files (any kind, rollups, raw frames), oldest first."""
    dates = {d.name.partition("=")[2] for d in _partitions(root, (*KINDS, rollup.ROLLUP))}
    dates |= {d.name for d in (root / "raw").glob("*/*") if d.is_dir()}
    return sorted(dates)


def drop_day(root: Path, date: str) -> int:
    """Delete everything recorded on `date` (YYYY-MM-DD); returns the directories removed."""
    removed = 0
    for directory in _partitions(root, (*KINDS, rollup.ROLLUP)):
        if directory.name == f"date={date}":
            shutil.rmtree(directory, ignore_errors=True)
            removed += 1
    for directory in (root / "raw").glob(f"*/{date}"):
        shutil.rmtree(directory, ignore_errors=True)
        removed += 1
    return removed
