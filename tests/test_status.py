"""Status messages: every stream client hears when a data source goes down and comes back."""

from __future__ import annotations

import json

from quantsaas.bus import Bus
from quantsaas.status import SourceState, StatusWatcher


def drain(bus: Bus) -> list[dict[str, object]]:
    (subscription,) = bus.subscriptions
    out = []
    while (item := subscription.get_nowait()) is not None:
        assert isinstance(item, str)
        out.append(json.loads(item))
    return out


def test_a_source_going_down_and_back_is_announced_once_each_way() -> None:
    bus = Bus()
    bus.subscribe()
    states = {"sim": SourceState(True), "bus": SourceState(True)}
    watcher = StatusWatcher(bus, lambda at: dict(states))
    watcher.check(1)
    assert drain(bus) == [] and watcher.down(1) == []  # live from the start: no news
    states["bus"] = SourceState(False, "redis unreachable: " + "x" * 10_000)
    watcher.check(2)
    watcher.check(3)  # still down: said once
    (down,) = drain(bus)
    assert down["type"] == "status" and down["source"] == "bus" and down["state"] == "down"
    assert isinstance(down["reason"], str) and 0 < len(down["reason"]) <= 200
    assert [d["source"] for d in watcher.down(4)] == ["bus"]
    states["bus"] = SourceState(True)
    watcher.check(5)
    assert [(m["source"], m["state"], m["reason"]) for m in drain(bus)] == [("bus", "live", None)]
    assert watcher.down(6) == [] and watcher.announced == 2


def test_a_source_that_starts_down_is_announced_and_new_clients_are_told() -> None:
    bus = Bus()
    bus.subscribe()
    down = {"deribit": SourceState(False, "cannot connect")}
    watcher = StatusWatcher(bus, lambda at: down, grace_s=5)
    watcher.check(1)
    watcher.check(4 * 10**9)
    assert drain(bus) == [] and watcher.down() == []  # still connecting: no news yet
    watcher.check(5 * 10**9 + 1)
    (message,) = drain(bus)
    assert (message["source"], message["state"]) == ("deribit", "down")
    assert watcher.down(6) == [{**message, "server_time": 6}]
