"""The local read model: a topic's initial state says how old it is and whether it is stale."""

from __future__ import annotations

import json

from helpers import ScriptedFeed, engine_of, make_instrument, make_runtime
from quantsaas.channels import BOOK
from quantsaas.model import BookSnapshot, now_ns

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
