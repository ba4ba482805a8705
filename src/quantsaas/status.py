"""Data-source status on the stream: every client is told when its data stops and resumes.

A background job of the runtime (`StatusWatcher.run`) looks at each source once a second: every
venue feed (down while its connection is starting, lost or stopped), and in an API process the
Redis relay (connected and data arriving). When a source changes state, one `status` message
goes to every open stream (`Bus.notify`), naming the source, the new state and the cause:

    {"type": "status", "source": "bus", "state": "down", "reason": "redis unreachable: ...",
     "server_time": ns}

A new client gets the current state of every source that is down in its `info` message
(`StatusWatcher.down()`), so nobody waits silently for data that is not coming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from quantsaas.bus import Bus
from quantsaas.model import now_ns
from quantsaas.wire import encode

log = logging.getLogger(__name__)

CHECK_S = 1.0
GRACE_S = 5.0
"""A source that has never been live is announced down only this long after the first check
(feeds and the Redis relay take a moment to connect at start-up)."""
REASON_LIMIT = 200


@dataclass(frozen=True, slots=True)
class SourceState:
    live: bool
    reason: str | None = None


Sources = Callable[[int], Mapping[str, SourceState]]
"""The state of every source at a time (ns)."""


class StatusWatcher:
    def __init__(
        self, bus: Bus, sources: Sources, check_s: float = CHECK_S, grace_s: float = GRACE_S
    ) -> None:
        self.bus = bus
        self.sources = sources
        self.check_s = check_s
        self.grace_ns = round(grace_s * 1e9)
        self.states: dict[str, SourceState] = {}
        self.announced = 0
        self._started: int | None = None

    def check(self, at_ns: int | None = None) -> None:
        """Announce every source whose state changed since the last check."""
        at = now_ns() if at_ns is None else at_ns
        if self._started is None:
            self._started = at
        starting = at - self._started < self.grace_ns
        for name, state in self.sources(at).items():
            previous = self.states.get(name)
            if previous is None and (state.live or starting):
                if state.live:
                    self.states[name] = state
                continue  # a source that starts live is no news; one still connecting neither
            self.states[name] = state
            if previous is not None and previous.live == state.live:
                continue
            self.announced += 1
            log.info("status: %s %s", name, "live" if state.live else "down")
            self.bus.notify(encode(status_message(name, state, at)))

    def down(self, at_ns: int | None = None) -> list[dict[str, object]]:
        """The sources that are down now (for a new client's `info` message)."""
        at = now_ns() if at_ns is None else at_ns
        return [status_message(n, s, at) for n, s in self.states.items() if not s.live]

    async def run(self) -> None:
        while True:
            try:
                self.check()
            except Exception:  # a status probe must never stop the service
                log.exception("status check failed")
            await asyncio.sleep(self.check_s)


def status_message(source: str, state: SourceState, at_ns: int) -> dict[str, object]:
    return {
        "type": "status",
        "source": source,
        "state": "live" if state.live else "down",
        "reason": None if state.reason is None else state.reason[:REASON_LIMIT],
        "server_time": at_ns,
    }
