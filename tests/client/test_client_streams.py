"""Sequence checking, gaps and resyncs of the client's streams, message by message (no I/O)."""

from __future__ import annotations

from typing import Any

import orjson

from helpers import make_instrument
from quantsaas.client._streams import BookWatcher, QueueWatcher, Stream, Streams
from quantsaas.client.decode import Decoder
from quantsaas.client.events import Gap
from quantsaas.model import BookDelta, BookSnapshot, Side, Trade
from quantsaas.wire import event_message

BTC = make_instrument(venue="sim")
TRADES = ("trades", "sim", "BTC/USD")
BOOK = ("book", "sim", "BTC/USD")


def message(channel: str, seq: int, event: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(event_message(channel, seq, event)))
    return loaded


def trade(seq: int) -> dict[str, Any]:
    return message("trades", seq, Trade(BTC, 100 + seq, 1, Side.BUY, str(seq), seq, seq))


def book_snapshot(seq: int, bid: int = 100) -> dict[str, Any]:
    return message("book", seq, BookSnapshot(BTC, ((bid, 5),), ((200, 5),), seq, seq, seq))


def book_delta(seq: int, bid: int, size: int) -> dict[str, Any]:
    return message("book", seq, BookDelta(BTC, ((bid, size),), (), seq, seq, seq))


def follow(*keys: tuple[str, str, str]) -> tuple[Streams, QueueWatcher]:
    streams = Streams(Decoder([BTC]))
    watcher = QueueWatcher(1000)
    for key in keys:
        streams.stream(key).watchers.append(watcher)
    return streams, watcher


def drain(watcher: QueueWatcher) -> list[Any]:
    items = []
    while (item := watcher.take()) is not None:
        items.append(item)
    return items


def gaps(items: list[Any]) -> list[tuple[int | None, str]]:
    return [(item.missed, item.reason) for item in items if isinstance(item, Gap)]


def test_in_order_messages_pass_and_a_jump_is_a_gap() -> None:
    streams, watcher = follow(TRADES)
    for seq in (5, 6, 7, 10, 11, 11, 9):
        assert streams.on_data(trade(seq)) is None  # trades are never resubscribed
    items = drain(watcher)
    assert gaps(items) == [(2, "sequence")]
    assert [i.trade_id for i in items if isinstance(i, Trade)] == ["5", "6", "7", "10", "11"]
    assert streams.stats.duplicates == 2 and streams.stats.gaps == 1


def test_a_book_gap_asks_for_a_fresh_snapshot_and_drops_deltas_until_then() -> None:
    streams, watcher = follow(BOOK)
    assert streams.on_data(book_delta(3, 99, 1)) is None  # before any snapshot: ignored
    assert streams.on_data(book_snapshot(4)) is None
    assert streams.on_data(book_delta(5, 99, 1)) is None
    assert streams.on_data(book_delta(7, 98, 1)) == BOOK  # lost 6: resubscribe
    assert streams.on_data(book_delta(8, 97, 1)) is None  # still stale: dropped
    assert streams.by_key[BOOK].book is None
    assert streams.on_data(book_snapshot(20, bid=150)) is None
    assert streams.on_data(book_delta(21, 149, 2)) is None
    book = streams.by_key[BOOK].book
    assert book is not None and book.to_snapshot().bids == ((150, 5), (149, 2))
    assert gaps(drain(watcher)) == [(1, "sequence")]


def test_the_servers_gap_message_is_reported_and_its_snapshot_restarts_the_book() -> None:
    streams, watcher = follow(BOOK, TRADES)
    streams.on_data(book_snapshot(1))
    streams.on_data(trade(40))
    streams.on_gap(
        {"type": "gap", "channel": "book", "venue": "sim", "symbol": "BTC/USD", "missed": 12}
    )
    streams.on_gap(
        {"type": "gap", "channel": "trades", "venue": "sim", "symbol": "BTC/USD", "missed": 3}
    )
    assert streams.on_data(book_delta(2, 99, 1)) is None  # from before the server's snapshot
    streams.on_data(book_snapshot(14, bid=120))
    streams.on_data(trade(44))  # rebased after the gap: no second report
    items = drain(watcher)
    assert gaps(items) == [(12, "server"), (3, "server")]
    assert isinstance(items[-2], BookSnapshot) and items[-2].bids == ((120, 5),)


def test_after_a_reconnect_only_a_moved_stream_reports_a_gap() -> None:
    streams, watcher = follow(BOOK, TRADES)
    streams.on_data(book_snapshot(10))
    streams.on_data(trade(30))
    streams.reconnecting()
    streams.on_data(book_delta(11, 99, 1))  # a delta before the new snapshot: dropped
    streams.on_data(book_snapshot(10))  # the same position: nothing lost
    streams.on_data(trade(31))  # the next one: nothing lost
    assert gaps(drain(watcher)) == []
    streams.reconnecting()
    streams.on_data(book_snapshot(3))  # a restarted server: its seq began again
    streams.on_data(trade(35))  # 32..34 went by while away
    assert gaps(drain(watcher)) == [(None, "reconnect"), (3, "reconnect")]


def test_malformed_messages_are_counted_and_a_bad_book_message_resyncs() -> None:
    streams, watcher = follow(BOOK, TRADES)
    streams.on_data(book_snapshot(1))
    bad = book_delta(2, 99, 1)
    bad["data"]["bids"] = [["1.2.3", "1"]]
    assert streams.on_data(bad) == BOOK
    assert streams.on_data({**trade(5), "seq": "5"}) is None
    assert streams.on_data({**trade(6), "channel": ["x"]}) is None
    assert streams.stats.malformed == 3
    assert gaps(drain(watcher)) == [(None, "malformed"), (None, "malformed")]


def test_a_full_queue_drops_and_puts_the_gap_where_the_hole_is() -> None:
    streams = Streams(Decoder([BTC]))
    watcher = QueueWatcher(3)
    streams.stream(TRADES).watchers.append(watcher)
    for seq in range(1, 7):
        streams.on_data(trade(seq))  # 4, 5, 6 find the queue full
    first = watcher.take()
    assert isinstance(first, Trade) and first.trade_id == "1"
    streams.on_data(trade(7))
    items = drain(watcher)
    assert [getattr(i, "trade_id", None) for i in items] == ["2", "3", None, "7"]
    assert gaps(items) == [(3, "client-queue")]


def test_the_book_watcher_conflates_to_the_newest_book() -> None:
    streams = Streams(Decoder([BTC]))
    watcher = BookWatcher()
    streams.stream(BOOK).watchers.append(watcher)
    streams.on_data(book_snapshot(1))
    for seq in range(2, 50):
        streams.on_data(book_delta(seq, 100, seq))
    newest = watcher.take(None)
    assert isinstance(newest, BookSnapshot) and newest.bids == ((100, 49),)
    assert newest.sequence == 49 and watcher.take(None) is None
    streams.on_data(book_delta(60, 100, 1))  # a gap: reported before any book
    item = watcher.take(None)
    assert isinstance(item, Gap) and item.missed == 10
    assert watcher.take(None) is None  # no book until the fresh snapshot


def test_a_crossing_delta_means_the_book_lost_something() -> None:
    stream = Stream(BOOK, Streams(Decoder()).stats)
    decoder = Decoder([BTC])
    assert not stream.on_event(decoder.decode(book_snapshot(1)), 1)
    assert stream.on_event(decoder.decode(book_delta(2, 250, 1)), 2)  # bid above the ask
    assert stream.book is None and stream.awaiting_snapshot
