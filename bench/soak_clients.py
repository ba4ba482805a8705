"""The load generator of the soak test (bench/soak.py): a fleet of picows WebSocket clients.

`client_main` is one load-generator process (`bench/soak.py --role client`): it holds its share
of the N connections, checks every message's per-stream `seq`, tallies gaps, re-snapshots,
errors and disconnects, samples latency on every `--sample-every`th connection and answers
`report` lines on stdin with one JSON line of counts since the last report. `Proc` is the
orchestrator's handle on such a process (lines on stdin/stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD"]
CHANNELS = ["trades", "book", "ticker"]
DATA_TYPES = {b"tra", b"del", b"tic", b"sna"}
"""First three letters of `type` of data messages: trade, delta, ticker, snapshot."""


@dataclass
class Tally:
    count: int = 0
    gaps: int = 0
    seq_errors: int = 0
    missing: int = 0
    """Messages skipped over by seq jumps."""
    resnapshots: int = 0
    errors: int = 0
    subscribed: int = 0
    connected: int = 0
    disconnected: int = 0
    latencies_ns: list[int] = field(default_factory=list)


async def client_main(args: argparse.Namespace) -> None:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    subscribe = json.dumps({"op": "subscribe", "channels": CHANNELS, "symbols": SYMBOLS}).encode()
    tally = Tally()
    time_ns = time.time_ns
    text = WSMsgType.TEXT
    book_key = b'"channel":"book"'
    listeners: list[Any] = []

    class Listener(WSListener):
        def __init__(self, sample: bool) -> None:
            self.sample = sample
            self.total = 0
            self.interval = 0
            self.seqs: dict[bytes, int] = {}

        def on_ws_connected(self, transport: WSTransport) -> None:
            tally.connected += 1

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not text:
                if frame.msg_type is WSMsgType.CLOSE:
                    transport.disconnect()
                return
            payload = frame.get_payload_as_bytes()
            kind = payload[9:12]
            if kind in DATA_TYPES:
                tally.count += 1
                self.interval += 1
                at = payload.find(b'"seq":', 20)
                seq = int(payload[at + 6 : payload.find(b",", at)])
                key = payload[payload.find(b'"channel":', 9) : at]
                last = self.seqs.get(key)
                if kind == b"sna":
                    if last is not None:
                        tally.resnapshots += 1  # only ever sent after a gap
                elif last is None:
                    if key.startswith(book_key):
                        tally.seq_errors += 1  # a book stream must start with its snapshot
                elif seq != last + 1:
                    tally.seq_errors += 1
                    tally.missing += max(0, seq - last - 1)
                self.seqs[key] = seq
                if self.sample and kind != b"sna":
                    at = payload.find(b'"ts_recv":', at)
                    tally.latencies_ns.append(time_ns() - int(payload[at + 10 : at + 29]))
            elif kind == b"gap":
                tally.gaps += 1
            elif kind == b"sub":
                tally.subscribed += 1
            elif kind == b"err":
                tally.errors += 1

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            tally.disconnected += 1

    transports: list[WSTransport] = []
    urls: list[str] = args.urls.split(",")
    failed = 0

    async def connect(index: int) -> None:
        nonlocal failed
        listener = Listener(index % args.sample_every == 0)
        url = urls[index % len(urls)]
        try:
            transport, _ = await ws_connect(lambda: listener, url, websocket_handshake_timeout=30)
        except Exception as exc:  # counted: READY then reports fewer subscribed clients
            failed += 1
            print(f"connect {url} failed: {exc!r}", file=sys.stderr, flush=True)
            return
        listeners.append(listener)
        transports.append(transport)

    # every client connects first, then all subscribe: under a heavy stream, handshakes made
    # while earlier clients already receive data would only measure the handshake queue
    batch = 50
    first, last = args.first, args.first + args.clients
    for start in range(first, last, batch):
        await asyncio.gather(*(connect(i) for i in range(start, min(start + batch, last))))
    for transport in transports:
        transport.send(text, subscribe)
    deadline = time.monotonic() + 60
    while tally.subscribed < args.clients and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    print(f"READY {tally.subscribed}", flush=True)

    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line in ("", "quit"):
            break
        if line == "report":
            counts = [listener.interval for listener in listeners]
            report = {
                "count": tally.count,
                "gaps": tally.gaps,
                "seq_errors": tally.seq_errors,
                "missing": tally.missing,
                "resnapshots": tally.resnapshots,
                "errors": tally.errors,
                "disconnected": tally.disconnected,
                "silent": sum(1 for count in counts if count == 0),
                "never": sum(
                    1 for listener in listeners if listener.total + listener.interval == 0
                ),
                "latencies_us": [ns // 1000 for ns in tally.latencies_ns],
            }
            tally.latencies_ns = []
            for listener in listeners:
                listener.total += listener.interval
                listener.interval = 0
            print(json.dumps(report), flush=True)
    for transport in transports:
        transport.disconnect()


class Proc:
    """A load-generator process spoken to by lines on stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @classmethod
    async def start(cls, name: str, *argv: str, log: Path | None = None) -> Proc:
        with open(log or os.devnull, "wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                limit=1 << 26,
            )
        return cls(process, name)

    async def line(self, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"{self.name} exited (code {self.process.returncode})")
        return raw.decode().strip()

    async def ask(self, command: str, timeout: float = 60) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.line(timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                await asyncio.wait_for(self.process.wait(), 8)
            except (TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
