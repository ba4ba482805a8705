"""Consolidated markets: BBO, merged depth, crossed markets, venues going down, quote merging."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import delta, make_instrument, snapshot, trade
from quantsaas.book import L2Book
from quantsaas.book.consolidated import (
    ConsolidatedMarket,
    QuoteEquivalence,
    VenueLevel,
    build_markets,
    pair_of,
)
from quantsaas.errors import ConfigError
from quantsaas.model import Instrument

VENUES = ("kraken", "coinbase", "binance", "sim")
SCALES = (10, 8, 8, 2)  # kraken's 10 decimals beside the simulator's 2


def books(count: int) -> list[L2Book]:
    return [L2Book(make_instrument(venue=VENUES[i], price_scale=SCALES[i])) for i in range(count)]


def at(book: L2Book, price: int) -> int:
    """A price in whole cents -> raw at the book's scale."""
    factor: int = 10 ** (book.instrument.price_scale - 2)
    return price * factor


def test_bbo_names_the_venue_of_each_side_and_detects_a_crossed_market() -> None:
    kraken, coinbase = books(2)
    kraken.apply_snapshot(
        snapshot(kraken.instrument, [(at(kraken, 100_00), 5)], [(at(kraken, 101_00), 5)])
    )
    coinbase.apply_snapshot(
        snapshot(coinbase.instrument, [(at(coinbase, 100_50), 7)], [(at(coinbase, 102_00), 7)])
    )
    market = ConsolidatedMarket("BTC/USD", [kraken, coinbase])
    bbo = market.bbo()
    assert bbo.bid == VenueLevel(100_50 * 10**8, 7, "coinbase")
    assert bbo.ask == VenueLevel(101_00 * 10**8, 5, "kraken")
    assert bbo.spread == 50 * 10**8 and not bbo.crossed and not bbo.locked
    coinbase.apply_delta(delta(coinbase.instrument, [(at(coinbase, 101_20), 1)], [], 2))
    bbo = market.bbo()
    assert bbo.crossed and bbo.bid is not None and bbo.bid.venue == "coinbase"
    assert bbo.spread == -20 * 10**8  # buy on kraken at 101.00, sell on coinbase at 101.20
    coinbase.invalidate()  # the venue goes down: its levels leave at once
    bbo = market.bbo()
    assert not bbo.crossed and bbo.venues == ("kraken",) and bbo.bid is not None
    assert bbo.bid.venue == "kraken"
    assert {level.venue for level in market.book().bids} == {"kraken"}


Side = st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5)), max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 4),
    st.lists(st.tuples(st.integers(0, 3), Side, Side, st.booleans()), min_size=1, max_size=30),
)
def test_bbo_is_the_best_of_the_venues_and_depth_sums_agree(
    count: int, steps: list[tuple[int, list[tuple[int, int]], list[tuple[int, int]], bool]]
) -> None:
    venue_books = books(count)
    for book in venue_books:  # bids 1..40 cents below 1000, asks above: each venue uncrossed
        book.apply_snapshot(snapshot(book.instrument, [(at(book, 900), 1)], [(at(book, 1100), 1)]))
    market = ConsolidatedMarket("BTC/USD", venue_books)
    for index, bids, asks, down in steps:
        book = venue_books[index % count]
        if down:
            book.invalidate()
        else:
            if not book.valid:
                book.apply_snapshot(snapshot(book.instrument, [], []))
            changes = delta(
                book.instrument,
                [(at(book, 1000 - p), s) for p, s in bids],
                [(at(book, 1000 + p), s) for p, s in asks],
                2,
            )
            book.apply_delta(changes)
        bbo = market.bbo()
        live = [b for b in venue_books if b.valid]
        tops = [(b.best_bid(), b.best_ask(), 10 ** (10 - b.instrument.price_scale)) for b in live]
        best_bids = [bid[0] * f for bid, _, f in tops if bid is not None]
        best_asks = [ask[0] * f for _, ask, f in tops if ask is not None]
        assert (bbo.bid.price if bbo.bid else None) == (max(best_bids) if best_bids else None)
        assert (bbo.ask.price if bbo.ask else None) == (min(best_asks) if best_asks else None)
        assert bbo.venues == tuple(b.instrument.venue for b in live)
        merged = market.book()
        for side, levels in (("bids", merged.bids), ("asks", merged.asks)):
            total = sum(
                s * 10 ** (8 - b.instrument.size_scale) for b in live for _, s in getattr(b, side)()
            )
            assert sum(level.size for level in levels) == total
            prices = [level.price for level in levels]
            assert prices == sorted(prices, reverse=side == "bids")
        assert len(market.book(depth=3).bids) <= 3


def test_quote_currencies_are_not_merged_by_default() -> None:
    usd = L2Book(make_instrument(quote="USD", venue="coinbase"))
    usdt = L2Book(make_instrument(quote="USDT", venue="binance"))
    usdc = L2Book(make_instrument(quote="USDC", venue="kraken"))
    assert set(build_markets([usd, usdt, usdc], QuoteEquivalence())) == {
        "BTC/USD",
        "BTC/USDT",
        "BTC/USDC",
    }
    merged = build_markets([usd, usdt, usdc], QuoteEquivalence.of(["USD", "USDT", "USDC"]))
    assert set(merged) == {"BTC/USD"}
    assert {m.venue for m in merged["BTC/USD"].members} == {"coinbase", "binance", "kraken"}
    with pytest.raises(ConfigError):
        QuoteEquivalence((("USD",),))


def test_options_and_duplicate_venues_are_refused() -> None:
    from quantsaas.feeds.deribit.parse import option_instrument

    assert pair_of(option_instrument("BTC-24SEP21-8000-P"), QuoteEquivalence()) is None
    one = L2Book(make_instrument(venue="kraken"))
    with pytest.raises(ConfigError):
        ConsolidatedMarket("BTC/USD", [one, L2Book(make_instrument(venue="kraken"))])


def test_tape_rescales_and_keeps_the_venue() -> None:
    sim, kraken = (
        L2Book(make_instrument(venue="sim")),
        L2Book(make_instrument(venue="kraken", price_scale=10)),
    )
    market = ConsolidatedMarket("BTC/USD", [sim, kraken])
    tape = market.tape(trade(sim.instrument, 100_00, 3, "t1", 5))
    assert tape is not None and tape.venue == "sim" and tape.price == 100 * 10**10
    other: Instrument = make_instrument(base="ETH", venue="sim")
    assert market.tape(trade(other, 1, 1, "t2", 5)) is None
