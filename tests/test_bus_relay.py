"""Bus.relay: messages numbered by an ingest process, re-published by an API process."""

from quantsaas.bus import Bus, Envelope, Gap, Topic

TOPIC: Topic = ("book", "sim", "BTC/USD")


def test_relay_keeps_the_senders_seq_skips_duplicates_and_reports_jumps_as_gaps() -> None:
    bus = Bus()
    subscription = bus.subscribe([TOPIC])
    assert bus.relay(TOPIC, 41, '{"seq":41}')  # a first message starts anywhere, no gap
    assert bus.relay(TOPIC, 42, '{"seq":42}')
    assert not bus.relay(TOPIC, 42, '{"seq":42}')  # a batch written twice
    assert bus.relay(TOPIC, 45, '{"seq":45}')
    assert bus.last_seq(TOPIC) == 45
    received = []
    while (item := subscription.get_nowait()) is not None:
        received.append(item)
    assert [(i.seq, i.wire) for i in received if isinstance(i, Envelope)] == [
        (41, '{"seq":41}'),
        (42, '{"seq":42}'),
        (45, '{"seq":45}'),
    ]
    assert Gap(TOPIC, 2) in received
    assert received.index(Gap(TOPIC, 2)) == 2


def test_advance_moves_a_topic_forward_only() -> None:
    bus = Bus()
    assert bus.advance(TOPIC, 10)
    assert not bus.advance(TOPIC, 9)
    assert bus.last_seq(TOPIC) == 10
