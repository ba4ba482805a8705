"""bench_fanout.py's load generator: N WebSocket clients in one process, driven over stdin.

    .venv/bin/python bench/fanout_clients.py --url ws://127.0.0.1:PORT/ws --clients N
        [--lib picows|websockets] [--deflate] [--sample-every 10]

Each connection sends `{"op":"subscribe","channels":["trades","book","ticker"],"symbols":[all
four]}`, so every event reaches every client. Every message is counted, with its bytes on the
wire (frame header + payload as received, i.e. compressed when it came compressed); every 10th
connection also parses `ts_recv` and records latency = receive time - ts_recv (same host clock).

picows clients (the default) are the cheapest Python clients there are. With `--deflate` they
offer permessage-deflate the way browsers do (`permessage-deflate; client_max_window_bits`) and
inflate what comes compressed (RSV1) with one inflater per connection, which reads both
context-takeover and no-context-takeover streams. `--lib websockets` uses websockets' client
(with `--deflate`, its own permessage-deflate).

Prints `READY <subscribed>` once every connection is subscribed, then answers lines on stdin:
`reset` (`ok`), `report` (one JSON line: elapsed, count, bytes, gaps, disconnected, latencies),
`quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import benchlib

SYMBOLS = [instrument.symbol for instrument in benchlib.bench_instruments()]
SUBSCRIBE = json.dumps(
    {"op": "subscribe", "channels": ["trades", "book", "ticker"], "symbols": SYMBOLS}
).encode()
DATA_TYPES = {b"tra", b"del", b"tic", b"sna"}
"""First three letters of `type` of data messages: trade, delta, ticker, snapshot."""
DATA_TEXT_TYPES = {kind.decode() for kind in DATA_TYPES}
OFFER = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
TAIL = b"\x00\x00\xff\xff"


@dataclass
class Tally:
    count: int = 0
    bytes: int = 0
    gaps: int = 0
    subscribed: int = 0
    connected: int = 0
    disconnected: int = 0
    latencies_ns: list[int] = field(default_factory=list)


def wire_size(payload_size: int) -> int:
    return payload_size + (2 if payload_size < 126 else 4 if payload_size < 1 << 16 else 10)


async def run(args: argparse.Namespace) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    tally = Tally()
    time_ns = time.time_ns
    text = WSMsgType.TEXT
    headers = OFFER if args.deflate else None

    class Listener(WSListener):
        def __init__(self, sample: bool) -> None:
            self.sample = sample
            self.inflater = zlib.decompressobj(-15)

        def on_ws_connected(self, transport: WSTransport) -> None:
            tally.connected += 1
            transport.send(text, SUBSCRIBE)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not text:
                if frame.msg_type is WSMsgType.CLOSE:
                    transport.disconnect()
                return
            payload = frame.get_payload_as_bytes()
            tally.bytes += wire_size(len(payload))
            if frame.rsv1:
                payload = self.inflater.decompress(payload + TAIL)
            kind = payload[9:12]
            if kind in DATA_TYPES:
                tally.count += 1
                if self.sample and kind != b"sna":
                    at = payload.find(b'"ts_recv":')
                    tally.latencies_ns.append(time_ns() - int(payload[at + 10 : at + 29]))
            elif kind == b"gap":
                tally.gaps += 1
            elif kind == b"sub":
                tally.subscribed += 1

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            tally.disconnected += 1

    transports: list[WSTransport] = []
    readers: list[asyncio.Task[None]] = []

    async def connect_picows(index: int) -> None:
        sample = index % args.sample_every == 0
        transport, _ = await ws_connect(
            lambda: Listener(sample),
            args.url,
            websocket_handshake_timeout=30,
            extra_headers=headers,
        )
        transports.append(transport)

    async def read_websockets(connection: Any, sample: bool) -> None:
        # the same bookkeeping as Listener.on_ws_frame, on str messages (bytes: uncompressed)
        try:
            async for message in connection:
                tally.bytes += wire_size(len(message))
                kind = message[9:12]
                if kind in DATA_TEXT_TYPES:
                    tally.count += 1
                    if sample and kind != "sna":
                        at = message.find('"ts_recv":')
                        tally.latencies_ns.append(time_ns() - int(message[at + 10 : at + 29]))
                elif kind == "gap":
                    tally.gaps += 1
                elif kind == "sub":
                    tally.subscribed += 1
        except Exception:
            pass
        tally.disconnected += 1

    async def connect_websockets(index: int) -> None:
        from websockets.asyncio.client import connect as ws_client

        compression = "deflate" if args.deflate else None
        connection = await ws_client(
            args.url, compression=compression, open_timeout=30, max_queue=None
        )
        tally.connected += 1
        await connection.send(SUBSCRIBE.decode())
        sample = index % args.sample_every == 0
        readers.append(asyncio.create_task(read_websockets(connection, sample)))

    connect = connect_websockets if args.lib == "websockets" else connect_picows
    batch = 50
    for first in range(0, args.clients, batch):
        await asyncio.gather(*(connect(i) for i in range(first, min(first + batch, args.clients))))
    deadline = time.monotonic() + 30
    while tally.subscribed < args.clients and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(f"READY {tally.subscribed}", flush=True)

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            break
        if line == "reset":
            tally.count = tally.bytes = tally.gaps = tally.disconnected = 0
            tally.latencies_ns = []
            started = time.monotonic()
            print("ok", flush=True)
        elif line == "report":
            report = {
                "elapsed": time.monotonic() - started,
                "count": tally.count,
                "bytes": tally.bytes,
                "gaps": tally.gaps,
                "disconnected": tally.disconnected,
                "latencies_us": [ns // 1000 for ns in tally.latencies_ns],
            }
            print(json.dumps(report), flush=True)
    for transport in transports:
        transport.disconnect()
    for reader in readers:
        reader.cancel()


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--lib", choices=["picows", "websockets"], default="picows")
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--sample-every", type=int, default=10)
    args = parser.parse_args()
    benchlib.raise_fd_limit()
    uvloop.run(run(args))


if __name__ == "__main__":
    main()
