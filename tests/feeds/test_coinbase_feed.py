"""Coinbase feed (Exchange and Advanced Trade) against the fake, through the engine, with faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import pytest_asyncio
from samples_path import lines

from helpers import engine_of, make_runtime, on_events
from quantsaas.engine import Engine
from quantsaas.errors import ConfigError, MalformedBook, ProtocolError, SequenceGap
from quantsaas.fakes.coinbase import CoinbaseFakeConfig, FakeCoinbase
from quantsaas.feeds.base import FeedState
from quantsaas.feeds.coinbase.feed import CoinbaseFeed
from quantsaas.feeds.instruments import coinbase_instruments
from quantsaas.feeds.transport import Backoff, TransportConfig
from quantsaas.model import BookDelta, BookSnapshot, MarketEvent, Trade

CONFIG = TransportConfig(stall_s=1.0, backoff=Backoff(initial_s=0.05, cap_s=0.4))
PRODUCTS = ("BTC-USD", "ETH-USD")


async def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class Rig:
    fake: FakeCoinbase
    feed: CoinbaseFeed
    engine: Engine
    bad: list[MarketEvent]


@pytest_asyncio.fixture(params=["exchange", "advanced"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    api: str = request.param
    fake = FakeCoinbase(CoinbaseFakeConfig(api=api, symbols=PRODUCTS, rate=100))
    port = await fake.start()
    feed = CoinbaseFeed(
        coinbase_instruments(PRODUCTS), url=f"ws://127.0.0.1:{port}", api=api, config=CONFIG
    )
    built = make_runtime([feed])
    engine = engine_of(built)
    bad: list[MarketEvent] = []

    def check(event: MarketEvent) -> None:
        if isinstance(event, BookSnapshot | BookDelta):
            book = engine.books[event.instrument.key]
            bid, ask = book.best_bid(), book.best_ask()
            if not book.valid or (bid and ask and bid[0] >= ask[0]):
                bad.append(event)

    on_events(built, check)
    task = asyncio.create_task(engine.run())
    try:
        rig = Rig(fake, feed, engine, bad)
        await wait_until(lambda: live(rig), 10, "first snapshots")
        yield rig
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


def live(rig: Rig) -> bool:
    books = [rig.engine.books[inst.key] for inst in rig.feed.instruments]
    return all(book.valid for book in books) and rig.feed.stats.state is FeedState.LIVE


async def assert_matches_fake(rig: Rig) -> None:
    """Pause the fake; after its last frames arrive the books must equal its true books."""
    rig.fake.paused = True
    try:
        for inst in rig.feed.instruments:
            bids, asks = rig.fake.market.book(inst.native_symbol)
            want_bids = [(p * 10**6, s) for p, s in bids]
            want_asks = [(p * 10**6, s) for p, s in asks]
            book = rig.engine.books[inst.key]
            await wait_until(
                lambda: book.valid and book.bids() == want_bids and book.asks() == want_asks,  # noqa: B023
                3,
                f"{inst.native_symbol} to equal the fake's book",
            )
    finally:
        rig.fake.paused = False
    assert rig.bad == []
    trades = sum(rig.engine.state(inst).trade_count for inst in rig.feed.instruments)
    assert trades > 0


@pytest.mark.asyncio
async def test_books_follow_the_fake(rig: Rig) -> None:
    await assert_matches_fake(rig)


@pytest.mark.asyncio
async def test_sequence_fault_forces_a_fresh_connection(rig: Rig) -> None:
    rig.fake.inject("gap")
    await wait_until(lambda: rig.feed.stats.gaps == 1, 5, "gap")
    assert "sequence" in (rig.feed.stats.last_error or "")
    await wait_until(lambda: rig.feed.stats.reconnects == 1 and live(rig), 5, "rebuilt")
    await assert_matches_fake(rig)


@pytest.mark.asyncio
async def test_big_snapshot_over_2_mib_arrives_in_one_frame(rig: Rig) -> None:
    rig.fake.inject("big-snapshot")
    rig.fake.inject("drop")
    btc = rig.engine.books[rig.feed.instruments[0].key]
    await wait_until(lambda: btc.level_count()[1] > 50_000, 10, "big snapshot")
    rig.feed.request_resync(rig.feed.instruments[0], "test")  # a resync is a reconnect
    await wait_until(lambda: btc.level_count()[1] < 1000 and live(rig), 10, "normal snapshot")
    await assert_matches_fake(rig)


@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["malformed", "shutdown", "silent"])
async def test_other_faults(rig: Rig, fault: str) -> None:
    rig.fake.inject(fault)
    if fault == "malformed":
        await wait_until(lambda: rig.feed.stats.malformed == 1, 5, "malformed")
        assert rig.feed.stats.reconnects == 0
    else:
        await wait_until(lambda: rig.feed.stats.reconnects >= 1, 4, "reconnect")
        await wait_until(lambda: live(rig), 5, "rebuilt")
    await assert_matches_fake(rig)


def test_unknown_api_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        CoinbaseFeed(coinbase_instruments(["BTC-USD"]), api="pro")


def test_a_malformed_advanced_frame_is_counted_and_its_number_taken() -> None:
    """A junk price in a ticker (a row of a frame whose envelope is sound) refuses that frame,
    and the next frame is not mistaken for lost messages (it used to cost a reconnect)."""
    frames = [json.loads(line) for line in lines("coinbase_advanced_quoted.jsonl")]
    assert [f["sequence_num"] for f in frames] == [1, 2, 3, 4, 5, 6]
    ticker = next(f for f in frames if f["channel"] == "ticker")
    ticker["events"][0]["tickers"][0]["price"] = "1e999999"
    feed = CoinbaseFeed(coinbase_instruments(["BTC-PERP-INTX"]), api="advanced")
    feed.on_connect()
    events = []
    for frame in frames:
        raw = json.dumps(frame).encode()
        if frame is ticker:
            with pytest.raises(ProtocolError):
                feed.handle_frame(raw, 0)
        else:
            events += feed.handle_frame(raw, 0)  # the heartbeat after it: no SequenceGap
    assert any(isinstance(e, Trade) for e in events) and feed.stats.gaps == 0
    skipped = {**frames[-1], "sequence_num": 8}  # 7 lost: a gap, as before
    with pytest.raises(SequenceGap):
        feed.handle_frame(json.dumps(skipped).encode(), 0)
    unnumbered = b'{"channel":"ticker","events":[{"tickers":[{"price":"x"}]}]}'
    with pytest.raises(ProtocolError):  # no readable number: refused, the count unchanged
        feed.handle_frame(unnumbered, 0)


def _l2(seq: int, kind: str, product: str, *rows: tuple[str, str, str]) -> bytes:
    updates = [{"side": s, "price_level": p, "new_quantity": q} for s, p, q in rows]
    event = {"type": kind, "product_id": product, "updates": updates}
    envelope = {"channel": "l2_data", "timestamp": "2026-04-07T14:30:02.123456789Z"}
    return json.dumps({**envelope, "sequence_num": seq, "events": [event]}).encode()


@pytest.mark.parametrize("typed", [True, False])
def test_advanced_book_events_carry_their_frame_number_and_wait_for_the_snapshot(
    typed: bool,
) -> None:
    """Each product's deltas are dropped until its snapshot; every book event is numbered by
    the frame that carried it (increasing per product, not contiguous). `typed=False` puts a
    long `client_id` first, past which the typed path does not look: the general path runs."""
    feed = CoinbaseFeed(coinbase_instruments(PRODUCTS), api="advanced")
    feed.on_connect()

    def frame(*args: object) -> list[MarketEvent]:
        raw = _l2(*args)  # type: ignore[arg-type]
        if not typed:
            raw = raw.replace(b'{"channel"', b'{"client_id":"%s","channel"' % (b"c" * 40), 1)
        return feed.handle_frame(raw, 99)

    def live() -> bool:
        return feed.stats.state == FeedState.LIVE

    assert frame(1, "update", "BTC-USD", ("bid", "100.00", "1")) == []  # before its snapshot
    (snap,) = frame(2, "snapshot", "BTC-USD", ("bid", "100.00", "1"), ("offer", "101.00", "2"))
    assert isinstance(snap, BookSnapshot) and snap.sequence == 2 and snap.ts_recv == 99
    assert snap.ts_event == 1775572202_123456789 and not live()
    assert frame(3, "update", "ETH-USD", ("offer", "5.00", "1")) == []  # ETH: no snapshot yet
    (delta,) = frame(4, "update", "BTC-USD", ("bid", "100.00", "0"))
    assert isinstance(delta, BookDelta) and delta.sequence == 4
    assert delta.bids == ((100 * 10**delta.instrument.price_scale, 0),)
    frame(5, "snapshot", "ETH-USD", ("bid", "4.00", "1"))
    assert live()
    feed.on_connect()  # a new connection: snapshots again before any delta
    assert frame(1, "update", "BTC-USD", ("bid", "100.00", "3")) == []


@pytest.mark.parametrize("bad", ["1e999999", "-1", "NaN", "12.3.4", ""])
def test_a_bad_advanced_book_level_is_a_malformed_book_and_its_number_is_taken(bad: str) -> None:
    """A level the typed path refuses goes to the general path, which names the book; the
    frame's number is taken, so the next frame is not mistaken for lost messages, and nothing
    of the bad frame reaches the book."""
    feed = CoinbaseFeed(coinbase_instruments(["BTC-USD"]), api="advanced")
    feed.on_connect()
    feed.handle_frame(
        _l2(1, "snapshot", "BTC-USD", ("bid", "100.00", "1"), ("offer", "101", "2")), 0
    )
    with pytest.raises(MalformedBook) as caught:
        feed.handle_frame(_l2(2, "update", "BTC-USD", ("bid", bad, "1")), 0)
    assert caught.value.symbol == "BTC-USD" and len(str(caught.value)) < 400
    (delta,) = feed.handle_frame(_l2(3, "update", "BTC-USD", ("offer", "101", "0")), 0)
    assert isinstance(delta, BookDelta) and delta.sequence == 3
    with pytest.raises(SequenceGap):
        feed.handle_frame(_l2(5, "update", "BTC-USD", ("offer", "102", "1")), 0)
