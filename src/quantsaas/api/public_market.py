"""The public, delayed market summary: what anonymous callers of /api/market_data see."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping

from quantsaas.model import now_ns
from quantsaas.wire import JSON

SAMPLE_EVERY_S = 1.0

Summaries = Mapping[tuple[str, str], JSON]
"""(venue, symbol) -> the instrument's /api/market_data entry."""


class DelayedMarket:
    """Samples every instrument's summary each second and answers with the newest sample that
    is at least `delay_s` old; nothing (empty) until the service has run that long."""

    def __init__(self, summarise: Callable[[], Summaries], delay_s: float) -> None:
        self.summarise = summarise
        self.delay_ns = int(delay_s * 1e9)
        self._samples: deque[tuple[int, Summaries]] = deque(
            maxlen=int(delay_s / SAMPLE_EVERY_S) + 3
        )

    def sample(self, at_ns: int | None = None) -> None:
        self._samples.append((now_ns() if at_ns is None else at_ns, self.summarise()))

    def delayed(self, at_ns: int | None = None) -> Summaries:
        cutoff = (now_ns() if at_ns is None else at_ns) - self.delay_ns
        old_enough = [(taken, summaries) for taken, summaries in self._samples if taken <= cutoff]
        return max(old_enough, key=lambda sample: sample[0])[1] if old_enough else {}

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)
