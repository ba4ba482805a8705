"""Order Flow Imbalance: best-level (Cont, Kukanov & Stoikov 2014) and multi-level (Xu, Gould &
Howison 2019), streaming and batch, exact integers.

Per book event n and level m (1 = best), with bid price/size (b, q^b) and ask (a, q^a):

    e_n = 1{b_n >= b_n-1} q^b_n - 1{b_n <= b_n-1} q^b_n-1
        - 1{a_n <= a_n-1} q^a_n + 1{a_n >= a_n-1} q^a_n-1

with weak inequalities, so a same-price queue change counts as q_n - q_n-1. Level m is the m-th
*occupied* price on each side; a missing level is price -inf (bid) / +inf (ask) with size 0.
Prices and sizes are the book's raw integers, so OFI is exact (raw size units).

Buckets: OFI_k = sum of e_n over events whose `ts_event` falls in [k T, (k+1) T). Depth
normalisation (Cont, Cucuringu & Zhang 2021): ofi_k = OFI_k / Q, Q = mean over the M levels and
over the bucket's states of (q^b + q^a) / 2, where the states are the one before the bucket's
first event and the one after each event. The first book state, and the first after a reset
(new snapshot, resync), have no predecessor and contribute no event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantsaas.model import Level

NO_BID = -(1 << 62)
NO_ASK = 1 << 62
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BookState:
    """Top M levels of a book: bid/ask prices and sizes, each a tuple of length M."""

    bid_px: tuple[int, ...]
    bid_qty: tuple[int, ...]
    ask_px: tuple[int, ...]
    ask_qty: tuple[int, ...]

    @classmethod
    def from_levels(cls, bids: Sequence[Level], asks: Sequence[Level], levels: int) -> BookState:
        """From best-first (price, size) lists, padded with empty levels to `levels`."""
        if levels < 1:
            raise ValueError("OFI needs at least one level")
        bid = list(bids[:levels]) + [(NO_BID, 0)] * (levels - len(bids[:levels]))
        ask = list(asks[:levels]) + [(NO_ASK, 0)] * (levels - len(asks[:levels]))
        return cls(
            tuple(p for p, _ in bid),
            tuple(q for _, q in bid),
            tuple(p for p, _ in ask),
            tuple(q for _, q in ask),
        )

    def depth(self) -> int:
        """Sum over levels of q^b + q^a."""
        return sum(self.bid_qty) + sum(self.ask_qty)


def event_ofi(prev: BookState, cur: BookState) -> list[int]:
    """e_n per level between two consecutive states."""
    out = []
    for pb0, qb0, pa0, qa0, pb, qb, pa, qa in zip(
        prev.bid_px,
        prev.bid_qty,
        prev.ask_px,
        prev.ask_qty,
        cur.bid_px,
        cur.bid_qty,
        cur.ask_px,
        cur.ask_qty,
        strict=True,
    ):
        e = (qb if pb >= pb0 else 0) - (qb0 if pb <= pb0 else 0)
        e += (qa0 if pa >= pa0 else 0) - (qa if pa <= pa0 else 0)
        out.append(e)
    return out


@dataclass(frozen=True, slots=True)
class OfiBucket:
    start_ns: int
    width_ns: int
    ofi: tuple[int, ...]
    """Per level, raw size units."""
    events: int
    mean_depth: float
    """Q: mean of (q^b + q^a) / 2 over levels and states, raw size units."""

    @property
    def normalised(self) -> tuple[float, ...]:
        q = self.mean_depth
        return tuple(x / q if q > 0 else float("nan") for x in self.ofi)


class OfiStream:
    """Streaming OFI over time buckets of `bucket_ns`: O(M) per book state."""

    def __init__(self, levels: int = 1, bucket_ns: int = 1_000_000_000) -> None:
        if levels < 1 or bucket_ns <= 0:
            raise ValueError("OFI needs at least one level and a positive bucket width")
        self.levels = levels
        self.bucket_ns = bucket_ns
        self.prev: BookState | None = None
        self._start: int | None = None
        self._sum = [0] * levels
        self._events = 0
        self._depth = 0
        self._states = 0

    @property
    def bucket_start(self) -> int | None:
        """Start of the open bucket, None before the first state or right after a flush."""
        return self._start

    def reset(self) -> None:
        """Forget the previous state (after a snapshot or resync); the bucket goes on."""
        self.prev = None

    def on_state(self, state: BookState, ts_ns: int) -> OfiBucket | None:
        """Feed the book state after an event; returns the bucket this event closed, if any."""
        start = ts_ns - ts_ns % self.bucket_ns
        closed = None
        if self._start is not None and start > self._start:
            closed = self.flush()
        prev = self.prev
        self.prev = state
        if self._start is None:
            self._start = start
        if prev is None:
            return closed
        if self._states == 0:
            self._depth, self._states = prev.depth(), 1
        for m, e in enumerate(event_ofi(prev, state)):
            self._sum[m] += e
        self._events += 1
        self._depth += state.depth()
        self._states += 1
        return closed

    def flush(self) -> OfiBucket | None:
        """Close the current bucket (also when a bucket's time is over with no new event)."""
        start = self._start
        if start is None:
            return None
        bucket = OfiBucket(
            start,
            self.bucket_ns,
            tuple(self._sum),
            self._events,
            self._depth / (2 * self.levels * self._states) if self._states else 0.0,
        )
        self._start = None
        self._sum = [0] * self.levels
        self._events = self._depth = self._states = 0
        return bucket if bucket.events else None


def ofi_events(
    bid_px: ArrayLike, bid_qty: ArrayLike, ask_px: ArrayLike, ask_qty: ArrayLike
) -> IntArray:
    """Batch e_n: arrays of shape (N, M) of N consecutive states -> (N - 1, M)."""
    arrays = [np.asarray(a, dtype=np.int64) for a in (bid_px, bid_qty, ask_px, ask_qty)]
    shape = arrays[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays):
        raise ValueError("OFI states must be four (N, M) integer arrays of the same shape")
    bp, bq, ap, aq = arrays
    bp0, bq0, ap0, aq0 = bp[:-1], bq[:-1], ap[:-1], aq[:-1]
    bp1, bq1, ap1, aq1 = bp[1:], bq[1:], ap[1:], aq[1:]
    e: IntArray = (
        np.where(bp1 >= bp0, bq1, 0)
        - np.where(bp1 <= bp0, bq0, 0)
        + np.where(ap1 >= ap0, aq0, 0)
        - np.where(ap1 <= ap0, aq1, 0)
    )
    return e


def ofi_buckets(
    ts_ns: ArrayLike,
    bid_px: ArrayLike,
    bid_qty: ArrayLike,
    ask_px: ArrayLike,
    ask_qty: ArrayLike,
    bucket_ns: int,
) -> list[OfiBucket]:
    """Batch bucketed OFI of one uninterrupted run of states; equals OfiStream on the same run."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    if bucket_ns <= 0:
        raise ValueError("the bucket width must be positive")
    e = ofi_events(bid_px, bid_qty, ask_px, ask_qty)
    if ts.shape != (e.shape[0] + 1,):
        raise ValueError("ts_ns must have one timestamp per state")
    if np.any(np.diff(ts) < 0):
        raise ValueError("ts_ns must be non-decreasing")
    levels = e.shape[1]
    depth = np.asarray(bid_qty, dtype=np.int64).sum(axis=1)
    depth = depth + np.asarray(ask_qty, dtype=np.int64).sum(axis=1)
    starts = ts[1:] - ts[1:] % bucket_ns
    cut = np.flatnonzero(np.diff(starts)) + 1
    bounds = np.concatenate(([0], cut, [starts.size])).tolist()
    sums = np.add.reduceat(e, bounds[:-1], axis=0) if e.shape[0] else e
    out = []
    for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        total_depth = int(depth[lo : hi + 1].sum())
        states = hi - lo + 1
        out.append(
            OfiBucket(
                int(starts[lo]),
                bucket_ns,
                tuple(int(v) for v in sums[i]),
                hi - lo,
                total_depth / (2 * levels * states),
            )
        )
    return out
