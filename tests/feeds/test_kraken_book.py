"""Kraken's CRC32 book checksum on the recorded samples, and the text-exact book rules."""

from __future__ import annotations

import zlib
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.errors import ChecksumMismatch
from quantsaas.feeds.kraken import parse
from quantsaas.feeds.kraken.book import BookUpdate, KrakenBook, TextLevel, checksum, checksum_text
from quantsaas.feeds.kraken.v1 import V1Book, parse_v1
from quantsaas.model import MAX_RAW
from quantsaas.replay_raw import replay_lines

BTC, ETH, CHF = parse.kraken_instruments(["BTC/USD", "ETH/USD", "XBT/CHF"])
INSTRUMENTS = {i.native_symbol: i for i in (BTC, ETH, CHF)}


def book_messages(name: str) -> list[parse.BookMessage]:
    out: list[parse.BookMessage] = []
    for line in lines(name):
        out.extend(
            i for i in parse.parse_frame(line, INSTRUMENTS, 0) if isinstance(i, parse.BookMessage)
        )
    return out


def test_doc_example_gives_3310070434_and_its_documented_strings() -> None:
    (message,) = book_messages("kraken_v2_checksum_doc_example.jsonl")
    book = KrakenBook(BTC)
    book.on_snapshot(message.update, 0)
    assert message.update.checksum == 3310070434
    assert book.checksum() == 3310070434
    bids, asks = book.top()
    assert checksum_text(asks[:1], []) == "452852100000"
    assert checksum_text([], bids).startswith("45283510000000452834154582015")


def test_both_frames_of_the_v2_sample_verify() -> None:
    snap, update = book_messages("kraken_v2_book.jsonl")
    book = KrakenBook(ETH, depth=10)
    snapshot = book.on_snapshot(snap.update, 1)
    assert book.checksum() == snap.update.checksum == 2606672715
    delta = book.on_update(update.update, 2)
    assert delta is not None and book.checksum() == update.update.checksum == 3329440863
    asks = dict(delta.asks)
    assert asks == {ETH.price("1797.29"): 0, ETH.price("1797.52"): ETH.size("1.56601318")}
    assert len(snapshot.asks) == 10


def test_all_289_v1_checksums_verify() -> None:
    book: KrakenBook | None = None
    verified = 0
    for line in lines("kraken_v1_book.jsonl"):
        item = parse_v1(parse.decode(line), 0)
        if not isinstance(item, V1Book):
            continue
        if item.snapshot:
            book = KrakenBook(CHF, item.depth)
            book.on_snapshot(item.update, 0)
            continue
        assert book is not None and item.update.checksum is not None
        book.on_update(item.update, 0)  # raises on any mismatch
        assert book.checksum() == item.update.checksum
        verified += 1
    assert verified == 289


def test_replay_raw_counts_every_checksum() -> None:
    result = replay_lines("kraken", lines("kraken_v1_book.jsonl"))
    assert result["checksums_verified"] == 289 and result["checksum_failures"] == 0
    result = replay_lines("kraken", lines("kraken_v2_book.jsonl") + lines("kraken_v1_book.jsonl"))
    assert result["checksums_verified"] == 291 and set(result["books"]) == {"ETH/USD", "XBT/CHF"}


def test_a_book_with_one_wrong_level_fails() -> None:
    (message,) = book_messages("kraken_v2_checksum_doc_example.jsonl")
    bids = list(message.update.bids)
    bids[3] = TextLevel(bids[3].price, "0.10000001")
    wrong = BookUpdate(tuple(bids), message.update.asks, message.update.checksum, 0)
    book = KrakenBook(BTC)
    with pytest.raises(ChecksumMismatch, match="3310070434"):
        book.on_snapshot(wrong, 0)
    assert not book.synced
    assert book.on_update(message.update, 0) is None  # nothing applied before a new snapshot


def test_trailing_zeros_matter_so_floats_would_fail() -> None:
    (message,) = book_messages("kraken_v2_checksum_doc_example.jsonl")
    asks = [(level.price, level.qty) for level in message.update.asks]
    bids = [(level.price, level.qty) for level in message.update.bids]
    as_float = [(str(float(p)), str(float(q))) for p, q in asks]
    assert checksum(asks, bids) == 3310070434
    assert checksum(as_float, bids) != 3310070434


def test_a_corrupted_v1_frame_is_detected_by_replay() -> None:
    frames = lines("kraken_v1_book.jsonl")
    corrupted = frames[:10] + [frames[10].replace(b'"c":"', b'"c":"1')] + frames[11:]
    result = replay_lines("kraken", corrupted)
    assert result["checksum_failures"] == 1
    # the book waits for a snapshot: no further update is verified or applied
    assert result["checksums_verified"] == 7 and "XBT/CHF" not in result["books"]


def test_depth_truncation_and_disabled_verification() -> None:
    book = KrakenBook(BTC, depth=10, verify=False)
    rows = [TextLevel(f"{100 + i}.0", "1.00000000") for i in range(12)]
    book.on_snapshot(BookUpdate(rows, (), 12345, 0), 0)  # wrong checksum ignored
    bids, _ = book.top(20)
    assert len(bids) == 10 and bids[0][0] == "111.0"
    expected = zlib.crc32(checksum_text([], bids).encode()) & 0xFFFFFFFF
    assert book.checksum() == expected


def test_levels_pushed_out_of_depth_are_reported_as_deletions() -> None:
    book = KrakenBook(BTC, depth=10)
    rows = [TextLevel(f"{100 + i}.0", "1.00000000") for i in range(10)]
    book.on_snapshot(BookUpdate(rows, (), None, 0), 0)
    delta = book.on_update(BookUpdate([TextLevel("200.0", "2.00000000")], [], None, 0), 0)
    assert delta is not None
    assert dict(delta.bids) == {BTC.price("200.0"): BTC.size("2"), BTC.price("100.0"): 0}


def _raw(text: str | int) -> int:
    return int(Decimal(text) * 10**10)


_PRICES = [f"{100 + i // 2}.{5 * (i % 2)}" for i in range(30)] + ["9999999997.00000"]
_PRICE = st.sampled_from(_PRICES).flatmap(  # the same price written two ways, or as an integer
    lambda p: st.sampled_from([p, p + "0"] + ([int(_raw(p) // 10**10)] if p.endswith(".0") else []))
)
_QTY = st.one_of(
    st.sampled_from(["0.00000000", "0.0", "0", 0]),
    st.integers(1, 10**12).map(lambda n: f"{n // 10**8}.{n % 10**8:08d}"),
    st.integers(1, 50),
    st.sampled_from(["1.5", "00.10", "1e-3", "+2.0", "1" * 19 + ".5"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.sampled_from([10, 25, 3]),  # 3: a v1 channel may name any depth
    updates=st.lists(
        st.tuples(st.lists(st.tuples(_PRICE, _QTY)), st.lists(st.tuples(_PRICE, _QTY))),
        max_size=25,
    ),
)
def test_the_book_agrees_with_a_plain_model_on_any_updates(
    depth: int, updates: list[tuple[list[tuple[str | int, str | int]], ...]]
) -> None:
    """Levels by raw price holding the venue's latest text, truncated to depth: the book's text,
    checksum and published state (snapshot, then deltas applied in order) agree with it."""
    book = KrakenBook(BTC, depth)
    book.on_snapshot(BookUpdate([], [], None, 0), 0)
    model: tuple[dict[int, tuple[str, str]], ...] = ({}, {})
    published: tuple[dict[int, int], ...] = ({}, {})
    for update in updates:
        for side, rows in zip(model, update, strict=True):
            for price, qty in rows:
                if _raw(qty) == 0:
                    side.pop(_raw(price), None)
                else:
                    side[_raw(price)] = (str(price), str(qty))
        bids = sorted(model[0].items(), reverse=True)[:depth]
        asks = sorted(model[1].items())[:depth]
        model = (dict(bids), dict(asks))
        expected = checksum([t for _, t in asks[:10]], [t for _, t in bids[:10]])
        levels = [[TextLevel(p, q) for p, q in rows] for rows in update]
        delta = book.on_update(BookUpdate(levels[0], levels[1], expected, 0), 0)
        assert delta is not None  # the checksum agreed (a mismatch raises)
        for shown, changes in zip(published, (delta.bids, delta.asks), strict=True):
            for price, size in changes:
                if size:
                    shown[price] = size
                else:
                    shown.pop(price, None)
        assert book.top(depth) == ([t for _, t in bids], [t for _, t in asks])
    snapshot = book.snapshot(0, 0)
    assert dict(snapshot.bids) == published[0] and dict(snapshot.asks) == published[1]
    assert all(p <= MAX_RAW for p in (*published[0], *published[1]))
    far = sum(p > MAX_RAW for side in model for p in side)
    assert book.withheld >= far


def test_levels_beyond_the_raw_range_truncated_away_publish_no_deletion() -> None:
    book = KrakenBook(BTC, depth=10, verify=False)
    rows = [TextLevel(f"{100 + i}.0", "1.0") for i in range(9)]
    snapshot = book.on_snapshot(
        BookUpdate([], [*rows, TextLevel("9999999997.0", "1.0")], None, 0), 0
    )
    assert len(snapshot.asks) == 9 and book.withheld == 1  # counted once
    delta = book.on_update(BookUpdate([], [TextLevel("99.0", "1.0")], None, 0), 0)
    assert delta is not None and delta.asks == ((BTC.price("99"), BTC.size("1")),)
    assert book.top(20)[1][-1] == ("108.0", "1.0") and book.withheld == 1
