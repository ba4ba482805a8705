"""Settings of the client's connection: reconnect backoff, budgets, pacing, queue bound."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt n: min(cap, initial * factor**n), with its upper
    `jitter` fraction random, so clients dropped together do not return together."""

    initial_s: float = 0.25
    cap_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.cap_s, self.initial_s * self.factor ** min(attempt, 32))
        return ceiling * (1.0 - self.jitter * rng())


@dataclass(frozen=True, slots=True)
class StreamConfig:
    stall_s: float | None = 60.0
    """A stream silent this long while connected raises StreamStalled (None: never)."""
    give_up_s: float | None = 60.0
    """Unreachable this long after having been connected: ServerGone (None: retry for ever)."""
    connect_timeout_s: float = 10.0
    """Budget of the very first connection (all attempts together)."""
    ping_interval_s: float = 10.0
    """WebSocket pings: a dead TCP connection is noticed within twice this."""
    inbound_per_s: int = 5
    """Most requests per second sent: the packaged `free` tier's limit, raised to the caller's
    own tier limit when the client has a key (GET /api/v1/limits)."""
    queue_limit: int = 100_000
    backoff: Backoff = field(default_factory=Backoff)
