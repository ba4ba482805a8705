import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import OFI_L1_VECTOR
from quantsaas.analytics.ofi import (
    NO_ASK,
    NO_BID,
    BookState,
    OfiStream,
    event_ofi,
    ofi_buckets,
    ofi_events,
)

L1 = OFI_L1_VECTOR
L1_EXPECTED = [3, 3, -4, 4, -8, 2, 0]

TWO_LEVEL = [
    [(100, 5, 101, 5), (99, 10, 102, 10)],
    [(100, 8, 101, 5), (99, 10, 102, 7)],
    [(100, 8, 101, 2), (99, 12, 102, 7)],
    [(99, 12, 101, 2), (98, 4, 102, 9)],
]


def state(*levels: tuple[int, int, int, int]) -> BookState:
    return BookState(
        tuple(lv[0] for lv in levels),
        tuple(lv[1] for lv in levels),
        tuple(lv[2] for lv in levels),
        tuple(lv[3] for lv in levels),
    )


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def arrays(states: list[BookState]) -> Arrays:
    bp, bq, ap, aq = (
        np.array([getattr(s, name) for s in states], dtype=np.int64)
        for name in ("bid_px", "bid_qty", "ask_px", "ask_qty")
    )
    return bp, bq, ap, aq


def test_best_level_vector_event_by_event() -> None:
    states = [state(row) for row in L1]
    got = [event_ofi(a, b)[0] for a, b in zip(states, states[1:], strict=False)]
    assert got == L1_EXPECTED
    assert ofi_events(*arrays(states))[:, 0].tolist() == L1_EXPECTED


def test_best_level_vector_bucketed_stream_and_batch() -> None:
    states = [state(row) for row in L1]
    ts = [0, 100, 200, 300, 1000, 1100, 1200, 1300]  # events 1..3 in bucket 0, 4..7 in bucket 1
    stream = OfiStream(levels=1, bucket_ns=1000)
    closed = [b for s, t in zip(states, ts, strict=True) if (b := stream.on_state(s, t))]
    last = stream.flush()
    assert last is not None
    got = [*closed, last]
    assert [b.ofi for b in got] == [(2,), (-2,)]
    assert [b.events for b in got] == [3, 4]
    assert got == ofi_buckets(np.array(ts), *arrays(states), bucket_ns=1000)


def test_two_level_vector_with_depth_normalisation() -> None:
    states = [state(*levels) for levels in TWO_LEVEL]
    e = ofi_events(*arrays(states))
    assert e[:, 0].tolist() == [3, 3, -8]
    assert e[:, 1].tolist() == [3, 2, -14]
    (bucket,) = ofi_buckets(np.array([0, 1, 2, 3]), *arrays(states), bucket_ns=10)
    assert bucket.ofi == (-2, -9)
    assert bucket.mean_depth == 7.25
    assert bucket.normalised == pytest.approx((-0.275862068965, -1.241379310345), abs=1e-9)


def test_missing_levels_are_padded_and_count_as_empty() -> None:
    padded = BookState.from_levels([(100, 5)], [], levels=2)
    assert padded.bid_px == (100, NO_BID) and padded.ask_px == (NO_ASK, NO_ASK)
    fuller = BookState.from_levels([(100, 5), (99, 4)], [(101, 3)], levels=2)
    # a new level 2 bid (price rose from -inf) adds its size; a new ask lowers OFI by its size
    assert event_ofi(padded, fuller) == [0 - 3, 4]


def test_reset_skips_the_event_across_a_snapshot() -> None:
    stream = OfiStream(levels=1, bucket_ns=1000)
    stream.on_state(state((100, 5, 101, 5)), 0)
    stream.reset()
    stream.on_state(state((90, 50, 91, 5)), 1)
    stream.on_state(state((90, 51, 91, 5)), 2)
    bucket = stream.flush()
    assert bucket is not None and bucket.ofi == (1,) and bucket.events == 1


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one level"):
        OfiStream(levels=0)
    with pytest.raises(ValueError, match="same shape"):
        ofi_events(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 1)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one timestamp per state"):
        ofi_buckets(np.zeros(2), *arrays([state((0, 0, 0, 0))] * 3), bucket_ns=1)
    with pytest.raises(ValueError, match="non-decreasing"):
        ofi_buckets(np.array([0, 2, 1]), *arrays([state((0, 0, 0, 0))] * 3), bucket_ns=1)


level = st.tuples(st.integers(95, 105), st.integers(0, 20), st.integers(0, 10), st.integers(0, 20))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(level, min_size=2, max_size=2), min_size=2, max_size=40), st.integers(1, 5)
)
def test_stream_equals_batch_on_random_books(
    raw: list[list[tuple[int, int, int, int]]], step: int
) -> None:
    states = [state(*[(bp, bq, bp + 1 + gap, aq) for bp, bq, gap, aq in levels]) for levels in raw]
    ts = np.arange(len(states), dtype=np.int64) * step
    stream = OfiStream(levels=2, bucket_ns=7)
    got = [b for s, t in zip(states, ts.tolist(), strict=True) if (b := stream.on_state(s, t))]
    last = stream.flush()
    got += [last] if last else []
    assert got == ofi_buckets(ts, *arrays(states), bucket_ns=7)
