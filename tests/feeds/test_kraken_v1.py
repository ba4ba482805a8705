"""Kraken v1 frames: the typed shortcut for book updates gives exactly what the general path
gives, and hands anything unusual to it (which names the error)."""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec
import poison
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samples_path import lines

from quantsaas.errors import ProtocolError
from quantsaas.feeds.kraken import parse, v1
from quantsaas.feeds.kraken.book import KrakenBook
from quantsaas.feeds.kraken.v1 import Event, V1Book, parse_v1, parse_v1_frame

(CHF,) = parse.kraken_instruments(["XBT/CHF"])
V1 = lines("kraken_v1_book.jsonl")


def _same(typed: object, general: object) -> None:
    """Equal as the book reads them: symbol, kind, depth, each level's text, checksum, time."""
    assert isinstance(typed, V1Book) and isinstance(general, V1Book)
    assert typed.depth == general.depth
    a, b = typed, general
    assert (a.symbol, a.snapshot) == (b.symbol, b.snapshot)
    for mine, theirs in ((a.update.bids, b.update.bids), (a.update.asks, b.update.asks)):
        assert [(r.price, r.qty) for r in mine] == [(r.price, r.qty) for r in theirs]
    assert (a.update.checksum, a.update.ts_event) == (b.update.checksum, b.update.ts_event)


def test_every_recorded_frame_reads_the_same_typed_or_general() -> None:
    typed_updates = 0
    for raw in V1:
        general = parse_v1(parse.decode(raw), 7)
        try:
            shape = v1._UPDATE.decode(raw)
        except msgspec.DecodeError:
            shape = None
        typed = parse_v1_frame(raw, 7)
        if general is None or isinstance(general, Event):
            assert typed == general
            continue
        _same(typed, general)
        typed_updates += shape is not None
    assert typed_updates == 289  # every update of the recording took the shortcut


def test_an_update_before_its_channel_is_known_takes_the_general_path() -> None:
    raw = V1[4].replace(b'"book-1000"', b'"book-77"')
    item = parse_v1_frame(raw, 0)
    assert isinstance(item, V1Book) and item.depth == 77
    _same(parse_v1_frame(raw, 0), item)  # and from then on the typed one


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"c":"', b'"c":"x'),  # not a CRC: the general path names it
        (b'"c":"', b'"c":"-'),
        (b'"c":"', b'"c":"123456789012345678901'),
        (b'"1618678134.117415"', b'"1618678134.1174150000000"'),
        (b'"1618678134.117415"', b'"\\u0661618678134.117415"'),  # an Arabic-Indic digit
        (b'"1618678134.117415"', b'"99999999999.117415"'),
        (b'"1618678134.117415"', b"1618678134.117415"),
    ],
)
def test_an_unusual_update_gives_the_general_paths_verdict(old: bytes, new: bytes) -> None:
    raw = V1[4].replace(old, new, 1)
    assert raw != V1[4]
    parse_v1(parse.decode(V1[2]), 0)  # the snapshot makes the channel known
    try:
        general: object = parse_v1(parse.decode(raw), 0)
    except ProtocolError as exc:
        with pytest.raises(ProtocolError) as caught:
            parse_v1_frame(raw, 0)
        assert str(caught.value) == str(exc) and len(str(exc)) < 200
        return
    _same(parse_v1_frame(raw, 0), general)


def test_a_republished_level_with_its_flag_is_read() -> None:
    parse_v1(parse.decode(V1[2]), 0)
    raw = V1[4].replace(b'.117415"]', b'.117415","r"]')
    item = parse_v1_frame(raw, 0)
    assert isinstance(item, V1Book)
    _same(item, parse_v1(parse.decode(raw), 0))


def _general(raw: bytes) -> object:
    return parse_v1(parse.decode(raw), 0)


def _typed(raw: bytes) -> object:
    return parse_v1_frame(raw, 0)


@pytest.mark.parametrize("parser", [_general, _typed], ids=["general", "typed"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), token=poison.tokens)
def test_v1_any_text_for_any_number_gives_a_value_or_a_protocol_error(
    parser: Callable[[bytes], object], data: st.DataObject, token: str
) -> None:
    """Both paths (the general one and the typed shortcut): a poisoned number is a value the
    book keeps exactly or a ProtocolError, never a crash or a float."""
    snapshot = parse_v1(parse.decode(V1[2]), 0)
    assert isinstance(snapshot, V1Book)
    frame = data.draw(st.sampled_from(V1[3:40]))
    path = data.draw(st.sampled_from(poison.slots(json.loads(frame))))
    raw = poison.inject(frame, path, token)
    book = KrakenBook(CHF, 1000, verify=False)
    book.on_snapshot(snapshot.update, 0)
    try:
        item = parser(raw)
        assert isinstance(item, V1Book)
        delta = book.on_update(item.update, 0)
    except ProtocolError as exc:
        assert len(str(exc)) < 700
        return
    poison.check_value(delta)
