from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import delta, make_instrument, snapshot
from quantsaas.book import L2Book
from quantsaas.errors import BookError, BookNotReady, CrossedBook
from quantsaas.model import Level

INSTRUMENT = make_instrument()


class ReferenceBook:
    """The obvious implementation: two dicts, sorted on every read."""

    def __init__(self, bids: list[Level], asks: list[Level]) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for price, size in changes:
                if size == 0:
                    side.pop(price, None)
                else:
                    side[price] = size

    def sorted_bids(self) -> list[Level]:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> list[Level]:
        return sorted(self.asks.items())

    def crossed(self) -> bool:
        return bool(self.bids and self.asks and max(self.bids) >= min(self.asks))


def test_snapshot_then_deltas_update_insert_and_delete() -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5), (99, 7)], [(101, 3), (103, 9)]))
    book.apply_delta(delta(INSTRUMENT, [(100, 6), (98, 1)], [(101, 0), (102, 4)], 2))
    assert book.bids() == [(100, 6), (99, 7), (98, 1)]
    assert book.asks() == [(102, 4), (103, 9)]
    assert book.best_bid() == (100, 6)
    assert book.best_ask() == (102, 4)
    assert book.spread() == 2
    assert book.mid() == Decimal("1.010")
    assert book.version == 2 and book.sequence == 2


def test_deleting_an_absent_level_is_harmless() -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5)], [(101, 3)]))
    book.apply_delta(delta(INSTRUMENT, [(97, 0)], [], 2))
    assert book.bids() == [(100, 5)]


def test_top_n_and_cumulative_depth() -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(
        snapshot(INSTRUMENT, [(100, 1), (99, 2), (98, 3)], [(101, 4), (102, 5), (104, 6)])
    )
    assert book.bids(2) == [(100, 1), (99, 2)]
    assert book.asks(2) == [(101, 4), (102, 5)]
    assert book.bids(0) == [] and book.asks(0) == []
    bids, asks = book.cumulative_depth(3)
    assert bids == [(100, 1), (99, 3), (98, 6)]
    assert asks == [(101, 4), (102, 9), (104, 15)]
    assert book.to_snapshot(1).bids == ((100, 1),)


def test_crossed_delta_flags_the_book_invalid_until_a_new_snapshot() -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5)], [(101, 3)]))
    with pytest.raises(CrossedBook, match="best bid 1.01 >= best ask 1.01"):
        book.apply_delta(delta(INSTRUMENT, [(101, 1)], [], 2))
    assert not book.valid
    with pytest.raises(BookNotReady):
        book.apply_delta(delta(INSTRUMENT, [(100, 1)], [], 3))
    with pytest.raises(BookNotReady):
        book.to_snapshot()
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5)], [(102, 3)], sequence=10))
    assert book.to_snapshot().sequence == 10  # raises unless valid


def test_crossed_snapshot_is_refused() -> None:
    book = L2Book(INSTRUMENT)
    with pytest.raises(CrossedBook):
        book.apply_snapshot(snapshot(INSTRUMENT, [(105, 5)], [(101, 3)]))
    assert not book.valid


def test_negative_size_is_a_book_error() -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5)], [(101, 3)]))
    with pytest.raises(BookError, match="negative size"):
        book.apply_delta(delta(INSTRUMENT, [(99, -1)], [], 2))
    assert not book.valid


@pytest.mark.parametrize(
    ("bids", "asks"),
    [
        ([(0, 5)], []),  # a price of zero
        ([(-3, 5)], []),  # a negative price
        ([], [(-1, 2)]),
        ([(99, 2**63)], []),  # a size no int64 column can hold
        ([], [(10**1000, 1)]),  # a price no int64 column can hold
        ([], [(101, -(10**5000))]),
    ],
)
def test_poisoned_levels_are_refused_as_a_second_guard(
    bids: list[Level], asks: list[Level]
) -> None:
    book = L2Book(INSTRUMENT)
    book.apply_snapshot(snapshot(INSTRUMENT, [(100, 5)], [(101, 3)]))
    with pytest.raises(BookError, match="out of range|negative size") as caught:
        book.apply_delta(delta(INSTRUMENT, bids, asks, 2))
    assert len(str(caught.value)) < 120  # never a 5,000-digit number in a message
    assert not book.valid
    fresh = L2Book(INSTRUMENT)
    with pytest.raises(BookError):
        fresh.apply_snapshot(snapshot(INSTRUMENT, [(100, 5), *bids], [(101, 3), *asks]))
    assert not fresh.valid


def test_delta_before_any_snapshot_is_refused() -> None:
    with pytest.raises(BookNotReady):
        L2Book(INSTRUMENT).apply_delta(delta(INSTRUMENT, [(1, 1)], [], 1))


levels = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 5)), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    start_bids=st.dictionaries(st.integers(1, 30), st.integers(1, 9), max_size=15),
    start_asks=st.dictionaries(st.integers(31, 60), st.integers(1, 9), max_size=15),
    updates=st.lists(st.tuples(levels, levels), max_size=60),
)
def test_any_delta_sequence_matches_the_reference_and_never_publishes_crossed(
    start_bids: dict[int, int],
    start_asks: dict[int, int],
    updates: list[tuple[list[Level], list[Level]]],
) -> None:
    book = L2Book(INSTRUMENT)
    reference = ReferenceBook(list(start_bids.items()), list(start_asks.items()))
    book.apply_snapshot(snapshot(INSTRUMENT, reference.sorted_bids(), reference.sorted_asks()))
    for sequence, (bids, asks) in enumerate(updates, start=2):
        reference.apply(bids, asks)
        if reference.crossed():
            with pytest.raises(CrossedBook):
                book.apply_delta(delta(INSTRUMENT, bids, asks, sequence))
            assert not book.valid
            # what a feed would do: a fresh, uncrossed snapshot
            best_ask = min(reference.asks)
            reference.bids = {p: s for p, s in reference.bids.items() if p < best_ask}
            book.apply_snapshot(
                snapshot(INSTRUMENT, reference.sorted_bids(), reference.sorted_asks(), sequence)
            )
        else:
            book.apply_delta(delta(INSTRUMENT, bids, asks, sequence))
        assert book.valid
        assert book.bids() == reference.sorted_bids()
        assert book.asks() == reference.sorted_asks()
        top_bid, top_ask = book.best_bid(), book.best_ask()
        if top_bid and top_ask:
            assert top_bid[0] < top_ask[0]
