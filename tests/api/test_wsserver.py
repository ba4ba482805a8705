"""permessage-deflate on /ws over a real server: negotiated without context takeover when offered,
one compressed frame per message and window size shared by every such client, plain frames
for everyone else."""

import asyncio
import json
import random
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.extensions import Extension
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Frame, Opcode
from websockets.typing import ExtensionParameter

from conftest import Service
from helpers import ScriptedFeed, make_instrument, make_runtime, serve_in_loop, trade
from quantsaas.api.app import create_app
from quantsaas.config import Settings

NO_TAKEOVER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
TAIL = b"\x00\x00\xff\xff"


class RecordingDeflate(ClientPerMessageDeflateFactory):
    """Offers permessage-deflate (by default as browsers do: `client_max_window_bits`) and
    records every text frame as it arrived: compressed or not, and its payload before inflating."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.frames: list[tuple[bool, bytes]] = []

    def process_response_params(
        self, params: Sequence[ExtensionParameter], accepted_extensions: Sequence[Extension]
    ) -> PerMessageDeflate:
        agreed = super().process_response_params(params, accepted_extensions)
        frames = self.frames

        class Recorded(PerMessageDeflate):
            def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
                if frame.opcode is Opcode.TEXT:
                    frames.append((frame.rsv1, bytes(frame.data)))
                return super().decode(frame, max_size=max_size)

        return Recorded(
            agreed.remote_no_context_takeover,
            agreed.local_no_context_takeover,
            agreed.remote_max_window_bits,
            agreed.local_max_window_bits,
        )


async def subscribed(url: str, **options: Any) -> ClientConnection:
    ws = await websockets.connect(url, **options)
    assert json.loads(await ws.recv())["type"] == "info"
    await ws.send(json.dumps({"op": "subscribe", "channels": ["trades"], "symbols": ["BTC/USD"]}))
    assert json.loads(await ws.recv())["type"] == "subscribed"
    return ws


async def texts(ws: ClientConnection, count: int) -> list[str]:
    return [str(await asyncio.wait_for(ws.recv(), 5)) for _ in range(count)]


def extensions_of(ws: ClientConnection) -> str | None:
    assert ws.response is not None
    return ws.response.headers.get("Sec-WebSocket-Extensions")


def push_trades(service: Service, count: int, padding: int = 0) -> None:
    rng = random.Random(count)
    block = "".join(rng.choices("0123456789abcdef", k=padding // 3))
    filler = "".join(rng.choices("0123456789abcdef", k=padding - 2 * len(block)))
    for n in range(count):
        trade_id = f"{block}{filler}{block}-{n}"  # the block repeats `padding` chars back
        service.feed.push(trade(service.btc, 10_000 + n, 1, trade_id, 1_000 + n))


@pytest.mark.asyncio
async def test_clients_offering_deflate_share_one_compressed_frame_per_message(
    service: Service,
) -> None:
    first, second = RecordingDeflate(), RecordingDeflate()
    a = await subscribed(service.ws, compression=None, extensions=[first])
    b = await subscribed(service.ws, compression=None, extensions=[second])
    plain = await subscribed(service.ws, compression=None)
    push_trades(service, 10)
    got_a, got_b, got_plain = await texts(a, 10), await texts(b, 10), await texts(plain, 10)
    for ws in (a, b, plain):
        await ws.close()
    assert extensions_of(a) == extensions_of(b) == NO_TAKEOVER
    assert extensions_of(plain) is None
    assert [json.loads(text)["seq"] for text in got_plain] == list(range(1, 11))
    assert got_a == got_b == got_plain
    assert first.frames[-10:] == second.frames[-10:]  # byte for byte the same frames
    for (compressed, payload), text in zip(first.frames[-10:], got_plain, strict=True):
        # compressed on its own: a fresh inflater reads it without the messages before it
        assert compressed and len(payload) < len(text)
        assert zlib.decompressobj(-15).decompress(payload + TAIL) == text.encode()


@pytest.mark.asyncio
async def test_a_client_asking_for_a_smaller_server_window_gets_frames_made_with_it(
    service: Service,
) -> None:
    wide, narrow = RecordingDeflate(), RecordingDeflate(server_max_window_bits=10)
    a = await subscribed(service.ws, compression=None, extensions=[wide])
    b = await subscribed(service.ws, compression=None, extensions=[narrow])
    push_trades(service, 5, padding=1800)  # a repeat 1.2 kB back: beyond a 10-bit window
    got_a, got_b = await texts(a, 5), await texts(b, 5)
    await a.close()
    await b.close()
    assert extensions_of(b) == f"{NO_TAKEOVER}; server_max_window_bits=10"
    assert got_a == got_b and all(len(text) > 1800 for text in got_a)
    for (_, packed_wide), (_, packed_narrow), text in zip(
        wide.frames[-5:], narrow.frames[-5:], got_a, strict=True
    ):
        assert zlib.decompressobj(-10).decompress(packed_narrow + TAIL) == text.encode()
        # the wide window refers back to the repeat; the 10-bit one cannot
        assert len(packed_narrow) > len(packed_wide) + 100


@pytest.mark.asyncio
async def test_an_offer_the_server_cannot_meet_gets_plain_frames(service: Service) -> None:
    # zlib cannot deflate with an 8-bit window: the offer is declined, the connection works
    ws = await subscribed(
        service.ws,
        compression=None,
        extensions=[ClientPerMessageDeflateFactory(server_max_window_bits=8)],
    )
    push_trades(service, 3)
    got = await texts(ws, 3)
    await ws.close()
    assert extensions_of(ws) is None
    assert [json.loads(text)["seq"] for text in got] == [1, 2, 3]


@pytest_asyncio.fixture
async def uncompressed() -> AsyncIterator[tuple[str, ScriptedFeed]]:
    btc = make_instrument()
    feed = ScriptedFeed([btc])
    app = create_app(make_runtime([feed], Settings(ws_compression=False)))
    async with serve_in_loop(app) as address:
        yield f"ws://{address}/ws", feed


@pytest.mark.asyncio
async def test_with_compression_off_no_offer_is_accepted(
    uncompressed: tuple[str, ScriptedFeed],
) -> None:
    url, feed = uncompressed
    ws = await subscribed(url)  # the websockets client offers deflate by default
    feed.push(trade(make_instrument(), 10_000, 1, "x" * 500, 1_000))
    [text] = await texts(ws, 1)
    await ws.close()
    assert extensions_of(ws) is None and "x" * 500 in text
