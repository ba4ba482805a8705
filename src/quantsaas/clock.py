"""The one time source, chosen at the composition root.

Live, "now" is the wall clock. On a replay (and in a backtest) it is the recorded time of the
event being replayed: the receive time the live service stamped on it, which is what its wall
clock said at that moment. Analytics read only this clock, so candles, VWAP, OFI and VPIN give
the same numbers live, on replay and on history.
"""

from __future__ import annotations

from typing import Protocol

from quantsaas.model import now_ns


class Clock(Protocol):
    def now_ns(self) -> int:
        """Nanoseconds since the epoch."""
        ...

    def observe(self, ts_recv: int) -> None:
        """An event stamped `ts_recv` was accepted (event time moves; wall time ignores it)."""
        ...


class WallClock:
    """Live time."""

    def now_ns(self) -> int:
        return now_ns()

    def observe(self, ts_recv: int) -> None:
        return None


class EventClock:
    """Replayed time: the latest receive time of the events replayed so far (never backwards)."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def observe(self, ts_recv: int) -> None:
        if ts_recv > self._now:
            self._now = ts_recv
