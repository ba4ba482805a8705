import random
import zlib

import pytest
from websockets.frames import Opcode

from helpers import read_frames
from quantsaas.wsframe import WINDOW_BITS, deflate, text_frame


def market_text(n: int, size: int = 300) -> bytes:
    rng = random.Random(n)
    levels = ",".join(
        f'["{rng.randint(1, 99999)}.00","0.{rng.randint(0, 10**8):08d}"]' for _ in range(size // 30)
    )
    return f'{{"type":"delta","channel":"book","seq":{n},"data":{{"bids":[{levels}]}}}}'.encode()


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65_535, 65_536, 70_000])
def test_plain_frames_of_every_header_size_read_back_as_the_message(length: int) -> None:
    payload = bytes(random.Random(length).choices(b"abcdefgh", k=length))
    [frame] = read_frames(text_frame(payload))
    assert frame.opcode is Opcode.TEXT and frame.fin and not frame.rsv1
    assert bytes(frame.data) == payload


@pytest.mark.parametrize("bits", list(WINDOW_BITS))
def test_compressed_frames_read_back_with_the_negotiated_window_and_each_on_its_own(
    bits: int,
) -> None:
    payloads = [market_text(n, 200 + 400 * n) for n in range(6)]
    frames = [text_frame(payload, bits) for payload in payloads]
    got = read_frames(b"".join(frames), bits)
    assert [bytes(frame.data) for frame in got] == payloads
    assert all(frame.rsv1 for frame in got)
    for frame, payload in zip(frames, payloads, strict=True):
        # no context takeover: a fresh inflater with this window reads any one message alone
        body = frame[2:] if frame[1] < 126 else frame[4:]
        assert zlib.decompressobj(-bits).decompress(body + b"\x00\x00\xff\xff") == payload


def test_a_smaller_window_makes_its_own_frame_without_references_beyond_it() -> None:
    rng = random.Random(7)
    block = bytes(rng.choices(b"0123456789abcdef", k=300))
    filler = bytes(rng.choices(b"0123456789abcdef", k=700))
    payload = block + filler + block  # the repeat is ~1 kB back: beyond a 9-bit (512 B) window
    wide, narrow = deflate(payload, 15), deflate(payload, 9)
    for packed, bits in ((wide, 15), (narrow, 9)):
        assert zlib.decompressobj(-bits).decompress(packed + b"\x00\x00\xff\xff") == payload
    # the 15-bit window refers back to the first block; the 9-bit one cannot and spells it out
    assert len(narrow) > len(wide) + 100


def test_a_message_that_deflate_cannot_shrink_is_sent_uncompressed() -> None:
    payload = b'{"type":"pong","id":7}'
    [frame] = read_frames(text_frame(payload, 15), 15)
    assert not frame.rsv1 and bytes(frame.data) == payload


@pytest.mark.parametrize("bits", [0, 8, 16])
def test_window_bits_outside_9_to_15_are_refused(bits: int) -> None:
    with pytest.raises(ValueError, match="window bits"):
        deflate(b"x" * 100, bits)
