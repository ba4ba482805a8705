"""The local read model: a topic's initial state says how old it is and whether it is stale."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import ScriptedFeed, engine_of, make_instrument, make_runtime
from quantsaas import readmodel, wire
from quantsaas.channels import BOOK
from quantsaas.model import BookDelta, BookSnapshot, now_ns

BTC = make_instrument()


def test_an_initial_book_carries_its_age_and_a_quiet_one_is_stale() -> None:
    built = make_runtime([ScriptedFeed([BTC])])
    engine = engine_of(built)
    stamp = now_ns() - 3_600 * 10**9  # an hour without data
    engine.on_event(BookSnapshot(BTC, ((100, 1),), ((102, 1),), 1, stamp, stamp))
    initial = built.read_model.initial((BOOK, *BTC.key))
    assert initial is not None
    old = json.loads(initial.messages[0])
    assert old["type"] == "snapshot" and old["stale"] is True
    assert 3_600_000 <= old["age_ms"] < 3_660_000
    fresh = now_ns()
    engine.on_event(BookSnapshot(BTC, ((100, 1),), ((102, 1),), 2, fresh, fresh))
    initial = built.read_model.initial((BOOK, *BTC.key))
    assert initial is not None
    new = json.loads(initial.messages[0])
    assert new["stale"] is False and 0 <= new["age_ms"] < 5_000


def test_initial_states_are_encoded_once_per_state_and_aged_per_subscriber(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscribe storm shares one encoding of an unchanged state; each subscriber still gets
    its own age; a changed state (a new seq, or an equal seq with a different state) is encoded
    afresh; a cached message is the text a fresh encoding gives."""
    built = make_runtime([ScriptedFeed([BTC])])
    engine, read_model = engine_of(built), built.read_model
    topic = (BOOK, *BTC.key)
    stamp = now_ns() - 2_000 * 10**6
    engine.on_event(BookSnapshot(BTC, ((100, 1), (99, 4)), ((102, 1),), 1, stamp, stamp))
    first = read_model.initial(topic)
    assert first is not None
    calls: list[tuple[str, int]] = []
    real = wire.event_message

    def counted(channel: str, seq: int, event: Any) -> dict[str, Any]:
        calls.append((channel, seq))
        return real(channel, seq, event)

    monkeypatch.setattr(readmodel, "event_message", counted)  # counts; the real one runs
    later = [read_model.initial(topic) for _ in range(50)]
    assert calls == []  # all 50 from the cached encoding
    messages = [json.loads(i.messages[0]) for i in later if i is not None]
    assert len(messages) == 50
    first_message = json.loads(first.messages[0])
    for message in messages:
        assert {k: v for k, v in message.items() if k != "age_ms"} == {
            k: v for k, v in first_message.items() if k != "age_ms"
        }
        assert message["age_ms"] >= first_message["age_ms"] >= 2_000
    fresh = real(BOOK, first.seq, engine.books[BTC.key].to_snapshot())
    fresh["age_ms"], fresh["stale"] = messages[-1]["age_ms"], messages[-1]["stale"]
    assert later[-1] is not None and later[-1].messages[0] == wire.encode(fresh)

    engine.on_event(BookDelta(BTC, ((101, 3),), (), 2, stamp + 1, stamp + 1))
    changed = read_model.initial(topic)
    assert changed is not None and changed.seq == first.seq + 1
    assert json.loads(changed.messages[0])["data"]["bids"][0] == ["1.01", "0.00000003"]
    assert len(calls) == 1

    # a state that changes between its channel's messages (an open candle): the seq stays, the
    # state differs, and it is encoded afresh
    states = [BookSnapshot(BTC, ((100, 1),), (), 1, stamp, stamp)]
    read_model.register_channel("quiet", lambda instrument: states[-1])  # type: ignore[attr-defined]
    quiet = ("quiet", *BTC.key)
    before = read_model.initial(quiet)
    states.append(BookSnapshot(BTC, ((100, 7),), (), 1, stamp, stamp))
    after = read_model.initial(quiet)
    assert before is not None and after is not None and before.seq == after.seq
    assert json.loads(after.messages[0])["data"]["bids"] == [["1.00", "0.00000007"]]
    assert len(calls) == 3
