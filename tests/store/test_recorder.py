"""The recorder: Parquet per venue/symbol/date, crash safety, write errors, upkeep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import msgspec.structs
import pyarrow.parquet as pq

from helpers import record_simulator
from quantsaas.analytics.candles import CandleBuilder
from quantsaas.model import Trade
from quantsaas.store import maintenance
from quantsaas.store.history import HistoryStore
from quantsaas.store.layout import BOOK, TRADES, data_files, partition_dir, read_instrument
from quantsaas.store.rawlog import append_frames, raw_path, read_frames
from quantsaas.store.recorder import Recorder, RecorderConfig

SRC = Path(__file__).resolve().parents[2] / "src"


def test_every_event_lands_in_its_partition_with_exact_ints(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=3)
    btc = rec.feed.instruments[0]
    day = next((tmp_path / TRADES / "venue=sim" / "symbol=BTC-USD").iterdir())
    files = data_files(day)
    assert files and read_instrument(files[0]) == btc
    table = pq.read_table(files)
    mine = [t for t in rec.trades if t.instrument == btc]
    assert table.num_rows == len(mine)
    assert table.schema.field("price").type == "int64"
    assert table.column("price").to_pylist() == [t.price for t in mine]
    assert table.column("size").to_pylist() == [t.size for t in mine]
    assert rec.recorder.status.dropped == 0 and rec.recorder.status.last_error is None


def test_candles_from_history_equal_candles_built_live(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=8)
    store = HistoryStore(tmp_path)
    for instrument in rec.feed.instruments:
        trades = [t for t in rec.trades if t.instrument == instrument]
        for interval in ("1s", "1m"):
            builder = CandleBuilder(instrument, interval)
            live = [c for t in trades if (c := builder.on_trade(t)) is not None]
            assert builder.current is not None
            live.append(builder.current)
            stored = store.candles(instrument, interval, 0, 2**62, until_ns=0)
            assert [replace(c, closed=False) for c in stored] == [
                replace(c, closed=False) for c in live
            ]
            assert len(stored) >= (8 if interval == "1s" else 1)


def test_book_at_time_from_history_equals_live_book(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=6, every=211)
    store = HistoryStore(tmp_path)
    assert len(rec.books) > 20
    for live in rec.books:
        past = store.book_at(live.instrument, live.ts_event)
        assert (past.bids, past.asks, past.sequence) == (live.bids, live.asks, live.sequence)


def test_write_errors_are_reported_and_the_engine_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    recorder = Recorder(RecorderConfig(blocker / "data"))
    rec = record_simulator(tmp_path / "ok", seconds=1)
    for trade in rec.trades[:100]:
        recorder.on_event(trade)
    assert recorder.flush() == 0
    health = recorder.health()
    assert health["ok"] is False and health["dropped"] == 100 and health["errors"] >= 1
    assert "Not a directory" in health["last_error"]
    assert str(tmp_path) not in str(health)  # no absolute path: /health is public
    recorder.on_event(rec.trades[0])  # still accepts events
    assert recorder.pending == 1


def test_compaction_keeps_query_results_and_retention_drops_old_days(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=2)
    extra = Recorder(RecorderConfig(tmp_path))
    for trade in rec.trades[:50]:
        extra.on_event(msgspec.structs.replace(trade, trade_id=f"x{trade.trade_id}"))
    extra.flush()
    store = HistoryStore(tmp_path)
    btc = rec.feed.instruments[0]
    before = store.trades_table(btc, 0, 2**62).to_pylist()
    assert maintenance.compact(tmp_path, current_slot=2**62) > 0
    day = partition_dir(tmp_path, TRADES, "sim", "BTC/USD", "2024-01-01")
    assert all(".part." not in p.name for p in day.iterdir())
    assert store.trades_table(btc, 0, 2**62).to_pylist() == before
    now = 1_704_067_200 * 10**9 + 3 * 86_400 * 10**9
    assert maintenance.apply_retention(tmp_path, 2, now) > 0
    assert not (tmp_path / BOOK / "venue=sim" / "symbol=BTC-USD" / "date=2024-01-01").exists()


def test_raw_frames_survive_a_torn_tail(tmp_path: Path) -> None:
    path = raw_path(tmp_path, "coinbase", 1_704_067_200 * 10**9)
    append_frames(path, [("coinbase", '{"a": 1}', 5), ("coinbase", b"\x00\xff", 6)])
    append_frames(path, [("coinbase", '{"b": 2}', 7)])
    with open(path, "ab") as sink:
        sink.write(b"\x28\xb5\x2f\xfd\x00\x48\x01")  # a torn zstd frame header
    assert list(read_frames(path)) == [(5, '{"a": 1}'), (6, b"\x00\xff"), (7, '{"b": 2}')]


def test_sigkill_mid_write_leaves_readable_files_and_loses_one_flush(tmp_path: Path) -> None:
    flush_s = 0.2
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    data, errors = tmp_path / "data", tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "quantsaas.cli", "record", "--data-dir", str(data)]
    argv += ["--rate", "5000", "--symbols", "BTC/USD,ETH/USD", "--flush", str(flush_s)]
    argv += ["--duration", "60", "--log-level", "warning"]
    with open(errors, "wb") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while not list(data.rglob("*.parquet")):
            assert proc.poll() is None, errors.read_text()
            assert time.monotonic() < deadline, "the recorder wrote nothing"
            time.sleep(0.05)
        time.sleep(1.5)
        killed_ns = time.time_ns()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    files = list(data.rglob("*.parquet"))
    assert files
    newest = 0
    for path in files:
        table = pq.read_table(path)  # every file is complete
        newest = max(newest, max(table.column("ts_recv").to_pylist(), default=0))
    # the last flush started at most flush_s before the kill (+ scheduling slack)
    assert killed_ns - newest < (flush_s + 1.0) * 1e9
    assert all(not p.name.endswith(".parquet") or not p.name.startswith(".") for p in files)


def test_the_recorder_is_a_bus_consumer_of_the_engine(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path, seconds=1)
    assert rec.recorder.status.events >= len(rec.trades)
    assert isinstance(rec.trades[0], Trade)


class Disk:
    """A filesystem of `capacity` bytes holding `root`: free space is what the files under
    `root` leave (the recorder measures free space through this instead of statvfs)."""

    def __init__(self, root: Path, capacity: int) -> None:
        self.root, self.capacity = root, capacity

    def used(self) -> int:
        return sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())

    def __call__(self, path: Path) -> int:
        return self.capacity - self.used()


def test_recording_pauses_below_the_free_space_floor_and_resumes(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path / "sim", seconds=1)
    disk = Disk(tmp_path / "data", capacity=10 << 20)
    recorder = Recorder(RecorderConfig(tmp_path / "data", min_free_bytes=4 << 20), free_space=disk)
    for trade in rec.trades[:200]:
        recorder.on_event(trade)
    assert recorder.flush() == 200 and not recorder.status.paused
    disk.capacity = disk.used() + (3 << 20)  # something else filled the disk
    for trade in rec.trades[200:300]:
        recorder.on_event(trade)
    assert recorder.flush() == 0
    health = recorder.health()
    assert health["paused"] is True and health["dropped"] == 100
    assert health["free_bytes"] == 3 << 20 and health["min_free_bytes"] == 4 << 20
    assert "recording paused" in health["last_error"]
    disk.capacity += 2 << 20  # space came back
    recorder.on_event(rec.trades[300])
    assert recorder.flush() == 1 and not recorder.status.paused


def test_below_the_floor_the_oldest_days_make_room(tmp_path: Path) -> None:
    root = tmp_path / "data"
    rec = record_simulator(root, seconds=2)  # simulated time: 2024-01-01
    old_day = partition_dir(root, TRADES, "sim", "BTC/USD", "2024-01-01")
    assert old_day.is_dir()
    disk = Disk(root, capacity=0)
    disk.capacity = disk.used() + (2 << 20) - 1  # one byte short of the floor
    config = RecorderConfig(root, min_free_bytes=2 << 20, free_space_retention=True)
    recorder = Recorder(config, free_space=disk)
    recorder.on_event(
        msgspec.structs.replace(rec.trades[0], ts_event=time.time_ns(), ts_recv=time.time_ns())
    )
    assert recorder.flush() == 1  # the old day went, today's trade was written
    assert not old_day.exists() and recorder.status.days_freed == 1
    assert not recorder.status.paused
    # without free_space_retention nothing is deleted: recording stays paused
    kept = Recorder(RecorderConfig(root, min_free_bytes=1 << 40), free_space=disk)
    kept.on_event(rec.trades[0])
    assert kept.flush() == 0 and kept.status.paused and kept.status.days_freed == 0


def test_the_real_disk_is_measured(tmp_path: Path) -> None:
    recorder = Recorder(RecorderConfig(tmp_path / "not" / "yet", min_free_bytes=1 << 60))
    rec = record_simulator(tmp_path / "sim", seconds=1)
    recorder.on_event(rec.trades[0])
    assert recorder.flush() == 0 and recorder.status.paused
    assert 0 < (recorder.status.free_bytes or 0) < 1 << 60


def test_readiness_follows_the_last_flush_not_the_first_error(tmp_path: Path) -> None:
    rec = record_simulator(tmp_path / "sim", seconds=1)
    root = tmp_path / "data"
    root.write_text("a file: every write fails, as on a full disk")
    recorder = Recorder(RecorderConfig(root))
    recorder.on_event(rec.trades[0])
    assert recorder.flush() == 0 and recorder.status.ok is False
    assert recorder.flush() == 0 and recorder.status.ok is False  # nothing to write: as it was
    root.unlink()  # space came back
    for trade in rec.trades[1:10]:
        recorder.on_event(trade)
    assert recorder.flush() == 9
    health = recorder.health()
    assert health["ok"] is True and health["last_error"] is not None  # the past stays visible


FILL_DISK = """
import resource, signal, sys
from pathlib import Path
import pyarrow as pa
from quantsaas.store.layout import write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal, like ENOSPC
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
table = pa.table({"x": pa.array(range(2_000_000), pa.int64())})
try:
    write_atomic(table, Path(sys.argv[1]))
except OSError as exc:
    print("failed:", exc.errno)
"""


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "part" / "1-1.part.parquet"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    result = subprocess.run(
        [sys.executable, "-c", FILL_DISK, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.startswith("failed:"), result.stderr
    assert list(target.parent.iterdir()) == []  # neither the file nor `.1-1.part.parquet.tmp`


def test_an_event_that_cannot_be_stored_is_quarantined_and_the_rest_written(
    tmp_path: Path,
) -> None:
    rec = record_simulator(tmp_path / "live", seconds=1)
    btc = rec.trades[0].instrument
    good = [t for t in rec.trades if t.instrument == btc][:50]
    poisoned = msgspec.structs.replace(
        good[10], price=10**30
    )  # no int64 holds it: the writer used to die here
    recorder = Recorder(RecorderConfig(tmp_path / "data"))
    for trade in [*good[:10], poisoned, *good[10:]]:
        recorder.on_event(trade)
    assert recorder.flush() == len(good)
    health = recorder.health()
    assert health["quarantined"] == 1 and health["ok"] is False
    assert "1 event(s) cannot be stored" in health["last_error"]
    (kept,) = (tmp_path / "data" / "quarantine").iterdir()
    assert str(10**30) in kept.read_text()
    stored = HistoryStore(tmp_path / "data").trades_table(btc, 0, 2**62)
    assert sorted(stored.column("trade_id").to_pylist()) == sorted(t.trade_id for t in good)
    recorder.on_event(good[0])
    assert recorder.flush() == 1 and recorder.health()["ok"] is True  # recovered at once
