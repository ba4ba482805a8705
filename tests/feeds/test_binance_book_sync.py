"""The official Binance local-book algorithm: bridging, stale snapshots, gaps, stale diffs."""

from __future__ import annotations

import pytest

from quantsaas.errors import SequenceGap
from quantsaas.feeds.binance.book_sync import DepthSync, StaleSnapshot, SyncState
from quantsaas.feeds.binance.parse import DepthDiff, DepthSnapshot
from quantsaas.feeds.instruments import binance_instruments
from quantsaas.model import BookDelta, BookSnapshot

(BTC,) = binance_instruments(["BTC/USDT"])


def diff(first: int, last: int) -> DepthDiff:
    return DepthDiff(first, last, BookDelta(BTC, ((100, first),), (), last, 0, 0))


def snap(last_id: int) -> DepthSnapshot:
    return DepthSnapshot(last_id, BookSnapshot(BTC, ((100, 1),), ((200, 1),), last_id, 0, 0))


def test_snapshot_bridges_the_buffer_and_drops_old_diffs() -> None:
    sync = DepthSync(BTC)
    assert bool(sync.wants_snapshot) is False  # (a call: mypy must not narrow the property)
    for first, last in ((10, 12), (13, 15), (16, 16)):
        assert sync.on_diff(diff(first, last)) is None
    assert sync.wants_snapshot
    events = sync.on_snapshot(snap(13))
    assert [e.sequence for e in events] == [13, 15, 16]
    assert sync.state is SyncState.SYNCED and sync.last_id == 16
    assert sync.on_diff(diff(17, 18)) is not None


def test_stale_snapshot_keeps_buffering_for_a_new_fetch() -> None:
    sync = DepthSync(BTC)
    sync.on_diff(diff(50, 52))
    with pytest.raises(StaleSnapshot):
        sync.on_snapshot(snap(40))
    assert sync.wants_snapshot and sync.stale_snapshots == 1
    assert [e.sequence for e in sync.on_snapshot(snap(51))] == [51, 52]


def test_snapshot_too_new_for_the_buffer_is_a_gap() -> None:
    sync = DepthSync(BTC)
    sync.on_diff(diff(50, 52))
    sync.on_diff(diff(60, 61))
    with pytest.raises(SequenceGap):
        sync.on_snapshot(snap(55))
    assert sync.state is SyncState.BUFFERING and not sync.buffer


def test_live_gap_resets_and_keeps_the_diff_that_revealed_it() -> None:
    sync = DepthSync(BTC)
    sync.on_diff(diff(1, 2))
    sync.on_snapshot(snap(1))
    with pytest.raises(SequenceGap, match="jump from 3 to 5"):
        sync.on_diff(diff(5, 6))
    assert sync.state is SyncState.BUFFERING and sync.wants_snapshot and sync.gaps == 1
    assert [e.sequence for e in sync.on_snapshot(snap(5))] == [5, 6]


def test_stale_live_diff_is_ignored() -> None:
    sync = DepthSync(BTC)
    sync.on_diff(diff(1, 5))
    sync.on_snapshot(snap(5))
    assert sync.on_diff(diff(3, 5)) is None
    assert sync.last_id == 5


def test_reset_forgets_the_book() -> None:
    sync = DepthSync(BTC)
    sync.on_diff(diff(1, 5))
    sync.on_snapshot(snap(5))
    sync.reset()
    assert sync.state is SyncState.BUFFERING and sync.last_id is None
    assert sync.on_diff(diff(6, 7)) is None
