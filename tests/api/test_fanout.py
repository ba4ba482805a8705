"""The Outbox on a recording sink (the connection side of api/wsserver.FanoutProtocol): what is
written, when, and in how many writes. The real protocol is covered end to end in
test_wsserver.py and test_stream.py."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from helpers import make_instrument, read_frames, trade
from quantsaas.api.fanout import FLUSH_FAILED, Outbox, Transport
from quantsaas.api.stream import StreamCounters
from quantsaas.bus import SLOW_CONSUMER, Bus, BusLimits, Envelope, Gap
from quantsaas.wire import encode, gap_message

INSTRUMENT, ETH_INSTRUMENT = make_instrument(), make_instrument("ETH")
BTC = ("trades", "test", "BTC/USD")
ETH = ("trades", "test", "ETH/USD")


class RecordingSink:
    """A connection whose transport records each write (the frames of one call) and that can
    be paused and resumed like a transport over its high-water mark."""

    def __init__(self, deflate_bits: int = 0) -> None:
        self.deflate_bits = deflate_bits
        self.on_writable: Callable[[bool], None] | None = None
        self.paused = False
        self.closing = False
        self.writes: list[list[bytes]] = []
        self.transport: Transport = self

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.writes.append([data])

    def writelines(self, data: list[bytes]) -> None:
        self.writes.append(list(data))

    def pause(self) -> None:
        self.paused = True
        if self.on_writable is not None:
            self.on_writable(False)

    def resume(self) -> None:
        self.paused = False
        if self.on_writable is not None:
            self.on_writable(True)

    def messages(self, write: int) -> list[dict[str, Any]]:
        data = b"".join(self.writes[write])
        return [json.loads(bytes(f.data)) for f in read_frames(data, self.deflate_bits)]


def select(item: Envelope | Gap | str) -> Envelope | str:
    return encode(gap_message(item.topic, item.missed)) if isinstance(item, Gap) else item


def event(n: int, instrument: Any = INSTRUMENT):  # type: ignore[no-untyped-def]
    return trade(instrument, 100 + n, 1, str(n), n)


def open_outbox(bus: Bus, sink: RecordingSink, *topics: Any) -> tuple[Outbox, StreamCounters]:
    counters = StreamCounters()
    outbox = Outbox(bus.subscribe(topics or [BTC, ETH]), sink, select, counters)
    outbox.open()
    return outbox, counters


@pytest.mark.parametrize("deflate_bits", [0, 15])
@pytest.mark.asyncio
async def test_what_is_published_in_one_turn_leaves_in_one_write_in_order(
    deflate_bits: int,
) -> None:
    bus, sink = Bus(), RecordingSink(deflate_bits)
    outbox, counters = open_outbox(bus, sink)
    published = [
        bus.publish(BTC, event(n)) if n % 2 else bus.publish(ETH, event(n, ETH_INSTRUMENT))
        for n in range(5)
    ]
    outbox.subscription.put_local('{"type":"note"}')
    assert sink.writes == []  # nothing before the loop turns
    await asyncio.sleep(0)
    assert len(sink.writes) == 1
    # the frames are the envelopes' own, made once for every client
    assert all(a is e.frame(deflate_bits) for a, e in zip(sink.writes[0], published, strict=False))
    got = sink.messages(0)
    assert [(m["symbol"], m["seq"]) for m in got[:5]] == [
        ("ETH/USD", 1), ("BTC/USD", 1), ("ETH/USD", 2), ("BTC/USD", 2), ("ETH/USD", 3)
    ]  # fmt: skip
    assert got[5] == {"type": "note"}
    bus.publish(BTC, event(9))
    await asyncio.sleep(0)
    assert len(sink.writes) == 2 and sink.messages(1)[0]["seq"] == 3
    assert counters.messages_sent == 7


@pytest.mark.asyncio
async def test_a_paused_connection_loses_what_overflows_its_queue_and_learns_of_the_gap() -> None:
    bus = Bus(BusLimits(queue_size=4, max_lag_s=60, max_drops=1000))
    sink = RecordingSink()
    outbox, _ = open_outbox(bus, sink, BTC)
    sink.pause()
    for n in range(10):
        bus.publish(BTC, event(n))
    await asyncio.sleep(0)
    assert sink.writes == []
    assert outbox.subscription.pending == 4 and outbox.subscription.dropped == 6
    sink.resume()
    await asyncio.sleep(0)
    assert len(sink.writes) == 1
    got = sink.messages(0)
    assert [m["seq"] for m in got[:4]] == [1, 2, 3, 4]
    gap = {"type": "gap", "channel": "trades", "venue": "test", "symbol": "BTC/USD", "missed": 6}
    assert got[4] == gap
    bus.publish(BTC, event(10))
    await asyncio.sleep(0)
    assert [m["seq"] for m in sink.messages(1)] == [11]


@pytest.mark.asyncio
async def test_a_connection_paused_too_long_is_closed_and_gets_nothing_more() -> None:
    bus = Bus(BusLimits(queue_size=2, max_lag_s=0.05, max_drops=10_000))
    sink = RecordingSink()
    outbox, _ = open_outbox(bus, sink, BTC)
    sink.pause()
    for n in range(3):
        bus.publish(BTC, event(n))  # the third is dropped: the lag clock starts
    await asyncio.sleep(0.1)
    bus.publish(BTC, event(3))
    assert outbox.subscription.closed_reason == SLOW_CONSUMER
    sink.resume()
    await asyncio.sleep(0)
    assert sink.writes == []


@pytest.mark.asyncio
async def test_a_closed_outbox_writes_nothing_and_lets_go_of_its_hooks() -> None:
    bus, sink = Bus(), RecordingSink()
    outbox, _ = open_outbox(bus, sink, BTC)
    bus.publish(BTC, event(0))
    outbox.close()
    bus.publish(BTC, event(1))
    await asyncio.sleep(0)
    assert sink.writes == []
    assert sink.on_writable is None and outbox.subscription.waker is None


@pytest.mark.asyncio
async def test_a_client_whose_flush_fails_is_closed_and_the_others_are_still_written() -> None:
    bus = Bus()
    broken_sink, sink = RecordingSink(), RecordingSink()

    def broken(item: Envelope | Gap | str) -> Envelope | str:
        raise RuntimeError("a bug")

    broken_outbox = Outbox(bus.subscribe([BTC]), broken_sink, broken, StreamCounters())
    broken_outbox.open()
    outbox, _ = open_outbox(bus, sink, BTC)
    bus.publish(BTC, event(0))
    await asyncio.sleep(0)
    assert broken_outbox.subscription.closed_reason == FLUSH_FAILED
    assert broken_sink.writes == [] and [m["seq"] for m in sink.messages(0)] == [1]


@pytest.mark.asyncio
async def test_nothing_is_written_to_a_closing_transport() -> None:
    bus, sink = Bus(), RecordingSink()
    open_outbox(bus, sink, BTC)
    sink.closing = True  # the client's close or a protocol error closed it
    bus.publish(BTC, event(0))
    await asyncio.sleep(0)
    assert sink.writes == []
