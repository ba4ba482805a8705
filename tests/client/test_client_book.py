"""The client's local book equals the server's L2Book on the same snapshot and deltas, and
refuses what the server would never publish (a crossed book, a negative size)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import delta, make_instrument, snapshot
from quantsaas.book import L2Book
from quantsaas.client.book import BookOutOfSync, LocalBook
from quantsaas.feeds.sim_book import MarketSimulator
from quantsaas.feeds.sim_instruments import SimConfig, sim_spec
from quantsaas.model import BookDelta, BookSnapshot

INSTRUMENT = make_instrument()


def test_the_simulators_stream_gives_the_servers_book_after_every_event() -> None:
    sim = MarketSimulator(sim_spec("BTC/USD"), SimConfig(events_per_second=2000.0, seed=3))
    first = sim.snapshot()
    server, local = L2Book(first.instrument), LocalBook(first)
    server.apply_snapshot(first)
    deltas = 0
    for event in sim.run_until(20 * 10**9):
        if isinstance(event, BookDelta):
            server.apply_delta(event)
            local.apply_delta(event)
            deltas += 1
            assert local.best_bid() == server.best_bid()
            assert local.best_ask() == server.best_ask()
        elif isinstance(event, BookSnapshot):
            server.apply_snapshot(event)
            local.apply_snapshot(event)
    assert deltas > 10_000
    full = server.to_snapshot()
    assert local.to_snapshot() == full
    assert local.to_snapshot(5) == server.to_snapshot(5)
    assert len(local) == len(full.bids) + len(full.asks)


prices = st.integers(1, 60)
sizes = st.integers(0, 5)


@settings(max_examples=300)
@given(
    st.lists(st.tuples(prices, sizes), max_size=20),
    st.lists(st.lists(st.tuples(st.booleans(), prices, sizes), max_size=6), max_size=40),
)
def test_random_updates_match_the_servers_book(
    start: list[tuple[int, int]], updates: list[list[tuple[bool, int, int]]]
) -> None:
    bids = [(p, s) for p, s in dict(start).items() if p <= 30 and s]
    asks = [(p + 30, s) for p, s in dict(start).items() if s]
    first = snapshot(INSTRUMENT, bids, asks)
    server, local = L2Book(INSTRUMENT), LocalBook(first)
    server.apply_snapshot(first)
    for number, changes in enumerate(updates, start=2):
        bid_changes = tuple((p, s) for is_bid, p, s in changes if is_bid)
        ask_changes = tuple((p, s) for is_bid, p, s in changes if not is_bid)
        update = delta(INSTRUMENT, list(bid_changes), list(ask_changes), number)
        try:
            server.apply_delta(update)
        except Exception:
            with pytest.raises(BookOutOfSync):
                local.apply_delta(update)
            return
        local.apply_delta(update)
        assert local.to_snapshot() == server.to_snapshot()


def test_a_crossed_or_negative_book_is_out_of_sync() -> None:
    book = LocalBook(snapshot(INSTRUMENT, [(100, 1)], [(101, 1)]))
    with pytest.raises(BookOutOfSync):
        book.apply_delta(delta(INSTRUMENT, [(101, 2)], [], 2))
    book = LocalBook(snapshot(INSTRUMENT, [(100, 1)], [(101, 1)]))
    with pytest.raises(BookOutOfSync):
        book.apply_delta(delta(INSTRUMENT, [(99, -1)], [], 2))
    with pytest.raises(BookOutOfSync):
        LocalBook(snapshot(INSTRUMENT, [(101, 1)], [(100, 1)]))


def test_deleting_an_unknown_level_changes_nothing() -> None:
    book = LocalBook(snapshot(INSTRUMENT, [(100, 1), (98, 2)], [(101, 1)]))
    book.apply_delta(delta(INSTRUMENT, [(99, 0)], [(105, 0)], 2))
    assert book.to_snapshot().bids == ((100, 1), (98, 2))
    assert book.to_snapshot(1).bids == ((100, 1),) and book.to_snapshot(0).asks == ()
    assert book.sequence == 2
