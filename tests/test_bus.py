import asyncio

import pytest

from helpers import make_instrument, trade
from quantsaas.bus import SLOW_CONSUMER, Bus, BusLimits, Envelope, Gap
from quantsaas.errors import SubscriptionClosed

INSTRUMENT = make_instrument()
BTC = ("trades", "test", "BTC/USD")
ETH = ("trades", "test", "ETH/USD")


def event(n: int):  # type: ignore[no-untyped-def]
    return trade(INSTRUMENT, 100 + n, 1, str(n), n)


@pytest.mark.asyncio
async def test_subscribers_get_their_topics_in_order_with_gap_free_sequences() -> None:
    bus = Bus()
    both = bus.subscribe([BTC, ETH])
    only_eth = bus.subscribe([ETH])
    for n in range(3):
        bus.publish(BTC, event(n))
        bus.publish(ETH, event(n))
    got = [await both.get() for _ in range(6)]
    assert all(isinstance(item, Envelope) for item in got)
    assert [(e.topic, e.seq) for e in got if isinstance(e, Envelope)] == [
        (BTC, 1), (ETH, 1), (BTC, 2), (ETH, 2), (BTC, 3), (ETH, 3)
    ]  # fmt: skip
    eth_seqs = []
    for _ in range(3):
        item = await only_eth.get()
        assert isinstance(item, Envelope)
        eth_seqs.append(item.seq)
    assert eth_seqs == [1, 2, 3]
    assert only_eth.get_nowait() is None


@pytest.mark.asyncio
async def test_publish_never_waits_for_a_full_subscriber_and_others_get_everything() -> None:
    bus = Bus(BusLimits(queue_size=4, max_lag_s=60, max_drops=1000))
    slow = bus.subscribe([BTC])
    fast = bus.subscribe([BTC])
    received = []
    for n in range(10):
        bus.publish(BTC, event(n))
        item = fast.get_nowait()
        assert isinstance(item, Envelope)
        received.append(item.seq)
    assert received == list(range(1, 11))
    assert slow.pending == 4 and slow.dropped == 6


@pytest.mark.asyncio
async def test_a_lagging_subscriber_gets_a_gap_marker_before_newer_messages() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=60, max_drops=1000))
    sub = bus.subscribe([BTC])
    for n in range(5):
        bus.publish(BTC, event(n))  # seq 1, 2 queued; 3, 4, 5 dropped
    first, second = await sub.get(), await sub.get()
    assert isinstance(first, Envelope) and isinstance(second, Envelope)
    assert (first.seq, second.seq) == (1, 2)
    marker = await sub.get()
    assert marker == Gap(BTC, 3)
    bus.publish(BTC, event(6))
    after = await sub.get()
    assert isinstance(after, Envelope) and after.seq == 6


@pytest.mark.asyncio
async def test_the_gap_marker_precedes_the_next_message_when_room_returns() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=60, max_drops=1000))
    sub = bus.subscribe([BTC])
    for n in range(4):
        bus.publish(BTC, event(n))  # 1, 2 queued; 3, 4 dropped
    await sub.get()  # room for one more
    bus.publish(BTC, event(5))
    items = [await sub.get() for _ in range(3)]
    assert isinstance(items[0], Envelope) and items[0].seq == 2
    assert items[1] == Gap(BTC, 2)
    assert isinstance(items[2], Envelope) and items[2].seq == 5


@pytest.mark.asyncio
async def test_a_subscriber_that_drops_too_much_is_disconnected() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=60, max_drops=3))
    sub = bus.subscribe([BTC])
    for n in range(6):
        bus.publish(BTC, event(n))
    assert sub.closed_reason == SLOW_CONSUMER
    assert bus.subscriber_count(BTC) == 0
    with pytest.raises(SubscriptionClosed, match=SLOW_CONSUMER):
        await sub.get()


@pytest.mark.asyncio
async def test_a_subscriber_lagging_too_long_is_disconnected() -> None:
    bus = Bus(BusLimits(queue_size=1, max_lag_s=0.05, max_drops=10_000))
    sub = bus.subscribe([BTC])
    bus.publish(BTC, event(0))
    bus.publish(BTC, event(1))  # first drop starts the lag clock
    await asyncio.sleep(0.1)
    bus.publish(BTC, event(2))
    assert sub.closed_reason == SLOW_CONSUMER


@pytest.mark.asyncio
async def test_catching_up_resets_the_lag_clock() -> None:
    bus = Bus(BusLimits(queue_size=1, max_lag_s=0.05, max_drops=10_000))
    sub = bus.subscribe([BTC])
    bus.publish(BTC, event(0))
    bus.publish(BTC, event(1))  # dropped
    await sub.get()
    assert await sub.get() == Gap(BTC, 1)
    await asyncio.sleep(0.1)
    bus.publish(BTC, event(2))
    bus.publish(BTC, event(3))  # a new, fresh lag episode
    assert sub.closed_reason is None


@pytest.mark.asyncio
async def test_waiting_reader_wakes_on_publish_and_on_close() -> None:
    bus = Bus()
    sub = bus.subscribe([BTC])
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    bus.publish(BTC, event(0))
    item = await asyncio.wait_for(reader, 1)
    assert isinstance(item, Envelope) and item.seq == 1
    reader = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close("shutdown")
    with pytest.raises(SubscriptionClosed, match="shutdown"):
        await asyncio.wait_for(reader, 1)


@pytest.mark.asyncio
async def test_unsubscribe_and_local_messages() -> None:
    bus = Bus()
    sub = bus.subscribe([BTC, ETH])
    sub.remove([BTC])
    bus.publish(BTC, event(0))
    sub.put_local("hello")
    bus.publish(ETH, event(1))
    assert await sub.get() == "hello"
    item = await sub.get()
    assert isinstance(item, Envelope) and item.topic == ETH
    assert bus.last_seq(BTC) == 1 and bus.last_seq(("book", "x", "y")) == 0


def test_an_envelope_is_framed_once_per_compression_setting() -> None:
    envelope = Bus().publish(BTC, event(0))
    plain = envelope.frame()
    assert plain is envelope.frame()  # cached: the same bytes object for every client
    text = envelope.text().encode()
    assert plain == bytes((0x81, 126)) + len(text).to_bytes(2, "big") + text  # unmasked
    wide, narrow = envelope.frame(15), envelope.frame(10)
    assert wide is envelope.frame(15) and narrow is envelope.frame(10)
    assert wide[0] == narrow[0] == 0x81 | 0x40  # compressed (RSV1)
    assert envelope.deflated is not None and set(envelope.deflated) == {10, 15}


def test_relayed_envelopes_are_framed_from_their_wire_text() -> None:
    bus = Bus()
    sub = bus.subscribe([BTC])
    assert bus.relay(BTC, 7, '{"type":"trade","seq":7}')
    item = sub.get_nowait()
    assert isinstance(item, Envelope) and item.frame() == b'\x81\x18{"type":"trade","seq":7}'


def test_a_writer_is_woken_once_per_batch_and_takes_the_whole_queue() -> None:
    bus = Bus()
    sub = bus.subscribe([BTC, ETH])
    wakes: list[int] = []
    sub.waker = lambda: wakes.append(sub.pending)
    bus.publish(BTC, event(0))
    sub.put_local("reply")
    bus.publish(ETH, event(1))
    assert wakes == [1]  # only when the queue stopped being empty
    batch = sub.drain()
    assert batch is not None and sub.drain() is None and sub.pending == 0
    assert [getattr(item, "topic", item) for item in batch] == [BTC, "reply", ETH]
    assert sub.delivered == 3
    bus.publish(BTC, event(2))
    assert wakes == [1, 1]


def test_drops_before_a_drain_come_as_a_gap_marker_with_the_next_drain() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=60, max_drops=1000))
    sub = bus.subscribe([BTC])
    sub.waker = lambda: None
    for n in range(5):
        bus.publish(BTC, event(n))  # 1, 2 queued; 3, 4, 5 dropped
    first = sub.drain()
    assert first is not None and [getattr(e, "seq", None) for e in first] == [1, 2]
    assert list(sub.drain() or ()) == [Gap(BTC, 3)]
    bus.publish(BTC, event(6))
    [after] = list(sub.drain() or ())
    assert isinstance(after, Envelope) and after.seq == 6


def test_a_drained_subscription_closed_as_slow_gives_nothing_more() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=60, max_drops=3))
    sub = bus.subscribe([BTC])
    sub.waker = lambda: None
    for n in range(6):
        bus.publish(BTC, event(n))
    assert sub.closed_reason == SLOW_CONSUMER and sub.pending == 2
    assert sub.drain() is None
