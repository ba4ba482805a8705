"""Store upkeep, run by the recorder's writer thread: compaction of finished slots, retention.

Compaction merges the part files of a finished slot into `{slot}.parquet` (written atomically)
and then deletes the parts; a reader prefers the compacted file, so a crash between the two
steps leaves duplicates on disk but never in query results (the next pass deletes them).

The recorder runs compaction (and the rollups it builds) in a child process, `python -m
quantsaas.store.maintenance ROOT SLOT`, when `has_work` finds something to do: PyArrow and
DuckDB are loaded there, for a few seconds every 10 minutes, and never in the serving process
(bench/README.md, footprint). Retention only deletes directories and runs in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from quantsaas.errors import StorageError
from quantsaas.logs import printable
from quantsaas.store import rollup
from quantsaas.store.layout import KINDS, META_KEY, write_atomic

CHILD_TIMEOUT_S = 600.0
log = logging.getLogger(__name__)


def _partitions(root: Path, kinds: tuple[str, ...] = KINDS) -> list[Path]:
    return [path for kind in kinds for path in (root / kind).glob("venue=*/symbol=*/date=*")]


def has_work(root: Path, current_slot: int) -> bool:
    """Whether `compact` has anything to do: a part of a finished slot, or a missing rollup."""
    for directory in _partitions(root):
        for path in directory.glob("*-*.part.parquet"):
            slot = path.name.partition("-")[0]
            if slot.isdigit() and int(slot) < current_slot:
                return True
    return bool(rollup.missing(root))


def compact_in_child(root: Path, current_slot: int) -> None:
    """`compact` in a child interpreter (this one's executable and environment, so the same
    installation of quantsaas). StorageError if it fails or outlasts CHILD_TIMEOUT_S, naming the
    exception's type only (its message may hold absolute paths; the log has the child's
    stderr)."""
    argv = [sys.executable, "-m", "quantsaas.store.maintenance", str(root), str(current_slot)]
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=CHILD_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise StorageError(f"compaction did not end within {CHILD_TIMEOUT_S:g} s") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(f"compaction could not start: {reason}") from None
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace").strip()
        log.error("compaction failed:\n%s", printable(stderr[-2000:]))
        last = (stderr.splitlines() or ["no output"])[-1]
        kind = last.partition(":")[0].strip()[:80] if ":" in last else "no error line"
        raise StorageError(f"compaction exited with {done.returncode} ({printable(kind)})")


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
                import pyarrow as pa  # here: a pass with nothing to compact loads no PyArrow
                import pyarrow.parquet as pq

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


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m quantsaas.store.maintenance ROOT CURRENT_SLOT`: compact, print the count."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m quantsaas.store.maintenance ROOT CURRENT_SLOT", file=sys.stderr)
        return 2
    print(compact(Path(args[0]), int(args[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
