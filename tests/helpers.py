"""Shared test support: instruments, a feed driven by the test, a real uvicorn on loopback,
a throwaway redis-server and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.client import ClientProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.protocol import CLIENT, OPEN, Protocol
from websockets.uri import parse_uri

from quantsaas import runtime
from quantsaas.api.wsserver import FanoutProtocol
from quantsaas.channels import BOOK, OPTIONS, TICKER, TRADES
from quantsaas.config import Settings
from quantsaas.engine import Engine
from quantsaas.feeds.base import EventSink, Feed, FeedState
from quantsaas.feeds.sim_book import MarketSimulator
from quantsaas.feeds.simulator import SimConfig, SimulatorFeed, select_instruments
from quantsaas.model import BookDelta, BookSnapshot, Instrument, Level, MarketEvent, Trade
from quantsaas.store.recorder import Recorder

OFI_L1_VECTOR = [
    (10000, 5, 10100, 5),
    (10000, 8, 10100, 5),
    (10000, 8, 10100, 2),
    (10000, 8, 10050, 4),
    (10000, 8, 10100, 6),
    (9950, 7, 10100, 6),
    (10000, 2, 10100, 6),
    (10000, 2, 10100, 6),
]
"""analytics.md §1.6: best bid price, bid size, ask price, ask size (prices in cents)."""


def read_frames(data: bytes, deflate_bits: int = 0) -> list[Frame]:
    """The frames a websockets client reads from server bytes `data` (permessage-deflate
    negotiated without server context takeover when `deflate_bits` is set), decoded, each with
    `rsv1` telling whether it came compressed."""
    client = Protocol(CLIENT, state=OPEN, max_size=None)
    flags: list[bool] = []
    if deflate_bits:

        class Recorded(PerMessageDeflate):
            def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
                if frame.opcode is Opcode.TEXT:
                    flags.append(frame.rsv1)
                return super().decode(frame, max_size=max_size)

        client.extensions = [Recorded(True, False, deflate_bits, 15)]
    client.receive_data(data)
    frames = [event for event in client.events_received() if isinstance(event, Frame)]
    assert client.parser_exc is None, client.parser_exc
    if deflate_bits:
        assert len(flags) == len(frames)
        return [Frame(f.opcode, f.data, f.fin, rsv1=c) for f, c in zip(frames, flags, strict=True)]
    return frames


def make_instrument(
    base: str = "BTC",
    quote: str = "USD",
    venue: str = "test",
    price_scale: int = 2,
    size_scale: int = 8,
) -> Instrument:
    return Instrument(
        venue=venue,
        base=base,
        quote=quote,
        native_symbol=f"{base}{quote}",
        price_scale=price_scale,
        size_scale=size_scale,
        tick_size=1,
        lot_size=1,
    )


def snapshot(
    instrument: Instrument, bids: list[Level], asks: list[Level], sequence: int = 1
) -> BookSnapshot:
    return BookSnapshot(instrument, tuple(bids), tuple(asks), sequence, 1_000, 2_000)


def delta(instrument: Instrument, bids: list[Level], asks: list[Level], sequence: int) -> BookDelta:
    return BookDelta(instrument, tuple(bids), tuple(asks), sequence, 1_000 + sequence, 2_000)


class ScriptedFeed(Feed):
    """A feed whose events the test pushes; remembers resync requests."""

    def __init__(self, instruments: list[Instrument], venue: str = "test") -> None:
        super().__init__(instruments)
        self.venue = venue
        self.events: asyncio.Queue[MarketEvent] | None = None
        self.resyncs: list[tuple[Instrument, str]] = []
        self._pending: list[MarketEvent] = []

    def push(self, event: MarketEvent) -> None:
        if self.events is None:
            self._pending.append(event)
        else:
            self.events.put_nowait(event)

    async def run(self, sink: EventSink) -> None:
        self.events = asyncio.Queue()
        for event in self._pending:
            self.events.put_nowait(event)
        self.stats.state = FeedState.LIVE
        while True:
            event = await self.events.get()
            self.stats.record_message(100)
            sink(event)

    def request_resync(self, instrument: Instrument, reason: str) -> None:
        self.resyncs.append((instrument, reason))


def trade(instrument: Instrument, price: int, size: int, trade_id: str, ts: int) -> Trade:
    from quantsaas.model import Side

    return Trade(instrument, price, size, Side.BUY, trade_id, ts, ts + 1)


@contextlib.asynccontextmanager
async def served_as_cli(
    app: FastAPI, settings: Settings, log_level: str = "warning", lifespan: bool = True
) -> AsyncIterator[str]:
    """Run `app` on uvicorn configured exactly as `quantsaas serve` does (`cli.server_config`:
    proxy headers, bounded heads, the WebSocket protocol) in the current event loop; yields
    `host:port` once it listens (the accounts may still be opening: api/app.py)."""
    from quantsaas.cli import server_config

    server = uvicorn.Server(server_config(app, settings, log_level))
    if not lifespan:  # the app already runs under another server
        server.config.lifespan = "off"
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped during startup")
                await asyncio.sleep(0.01)
        yield f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def serve_in_loop(
    app: FastAPI, ws_max_size: int = 64 * 1024, ws: Any = FanoutProtocol
) -> AsyncIterator[str]:
    """Run `app` on a real uvicorn in the current event loop, with `serve`'s WebSocket protocol
    unless `ws` names another (e.g. "websockets-sansio"); yields `host:port`."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=ws,
        ws_max_size=ws_max_size,
        ws_per_message_deflate=app.state.settings.ws_compression,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped during startup")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    opening = app.state.accounts_opening
    if opening is not None:  # open beside the running service: the tests use them at once
        await asyncio.shield(opening)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run `app` on a real uvicorn (lifespan included) in a thread of its own, for synchronous
    tests and module-scoped fixtures; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


class StalledClient:
    """A WebSocket client on a raw socket that subscribes and then stops reading.

    The kernel buffers a few MB for it and then the server's writes block, which is exactly what
    a slow consumer looks like to the server. `drain` reads everything that was sent.
    """

    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.protocol = ClientProtocol(parse_uri(f"ws://{address}/ws"))
        self.sock = socket.socket()
        # shrink the receive buffer before connecting, so the TCP window is small from the start
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect((host, int(port)))
        self.protocol.send_request(self.protocol.connect())
        self._flush()
        while self.protocol.handshake_exc is None and not self.protocol.events_received():
            self.protocol.receive_data(self.sock.recv(4096))
            if getattr(self.protocol, "response", None) is not None:
                break
        self.messages: list[str] = []

    def _flush(self) -> None:
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.sock.sendall(chunk)

    def send(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self._flush()

    def drain(self, timeout: float = 10.0) -> int | None:
        """Read until the connection ends; returns the close code received, if any."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    break
                self.protocol.receive_data(data)
                for frame in self.protocol.events_received():
                    if isinstance(frame, Frame) and frame.opcode is Opcode.TEXT:
                        self.messages.append(bytes(frame.data).decode())
                self._flush()
                if self.protocol.close_rcvd is not None:
                    break
        finally:
            self.sock.close()
        return None if self.protocol.close_rcvd is None else self.protocol.close_rcvd.code


def drive_simulator(
    sink: Callable[[MarketEvent], None],
    sims: Sequence[MarketSimulator],
    seconds: float,
    step_s: float = 0.05,
) -> None:
    """Feed simulators' events to `sink` in simulated time (no sleeping): snapshots first, then
    every event up to `seconds` of simulated time, instrument by instrument per `step_s`."""
    for sim in sims:
        sink(sim.snapshot())
    for step in range(1, round(seconds / step_s) + 1):
        target = round(step * step_s * 1e9)
        for sim in sims:
            for event in sim.run_until(target):
                sink(event)


@dataclass
class Recording:
    """A simulator session recorded into a store, with what the live engine saw."""

    engine: Engine
    feed: SimulatorFeed
    recorder: Recorder
    trades: list[Trade]
    books: list[BookSnapshot]
    """Copies of live books taken every `every`-th delta, to compare with history."""
    runtime: runtime.Runtime | None = None


def record_simulator(
    root: Path,
    seconds: float = 10.0,
    symbols: str = "BTC/USD,ETH/USD",
    rate: float = 2000.0,
    snapshot_s: float = 1.0,
    every: int = 997,
) -> Recording:
    """Drive the simulator through an engine with a recorder attached, in simulated time."""
    feed = SimulatorFeed(select_instruments(symbols), SimConfig(events_per_second=rate))
    settings = Settings(data_dir=root, record_snapshot_s=snapshot_s, web_dist=None)
    built = runtime.build(settings, feeds=[feed], record=True)
    engine, recorder = built.engine, built.recorder
    assert engine is not None and recorder is not None
    recording = Recording(engine, feed, recorder, [], [], built)
    deltas = itertools.count()

    def watch(event: MarketEvent) -> None:
        if isinstance(event, Trade):
            recording.trades.append(event)
        elif isinstance(event, BookDelta) and next(deltas) % every == 0:
            recording.books.append(engine.books[event.instrument.key].to_snapshot())

    on_events(built, watch)
    sims = [feed.simulator(instrument) for instrument in feed.instruments]
    drive_simulator(engine.on_event, sims, seconds)
    recorder.flush()
    return recording


def make_runtime(
    feeds: Sequence[Feed], settings: Settings | None = None, **options: Any
) -> runtime.Runtime:
    """The `all` runtime over these feeds, as the composition root builds it."""
    return runtime.build(settings or Settings(web_dist=None), feeds=feeds, **options)


def engine_of(built: runtime.Runtime) -> Engine:
    assert built.engine is not None
    return built.engine


def on_events(
    built: runtime.Runtime,
    handler: Callable[[Any], None],
    channels: Sequence[str] = (TRADES, BOOK, TICKER, OPTIONS),
) -> None:
    """Call `handler` with every event the engine publishes (a test consumer on the bus)."""
    built.bus.consume("test", channels, lambda envelope: handler(envelope.event))


REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """A real redis-server on a free loopback port, without persistence, files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        self.process = subprocess.Popen(
            [REDIS_SERVER, *args, "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start listening")
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


POSTGRES_BIN = max(
    (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")), default=None
)
"""The newest Debian PostgreSQL binaries (scripts/check.sh installs the `postgresql` package)."""


class PostgresServer:
    """A real PostgreSQL on a free loopback port, trust auth, no fsync, in a temporary directory.

    postgres refuses to run as root: as root, the directory is given to the `postgres` user and
    every binary runs through `runuser -u postgres`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.directory = Path(tempfile.mkdtemp(prefix="quantsaas-pg-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self._databases = itertools.count(1)
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin_dir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
        data = str(self.directory / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log_file = str(self.directory / "postgres.log")
        self._run("pg_ctl", "-D", data, "-l", log_file, "-o", options, "-w", "-t", "30", "start")
        self.running = True

    def create_database(self) -> str:
        """A new empty database: its SQLAlchemy (asyncpg) URL."""
        name = f"test_{next(self._databases)}"
        host = ["-h", str(self.directory), "-p", str(self.port), "-U", "postgres"]
        self._run("psql", *host, "-q", "-c", f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self.running:
            data = str(self.directory / "data")
            self._run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
            self.running = False
        shutil.rmtree(self.directory, ignore_errors=True)


async def refuse_writes(engine: AsyncEngine, table: str) -> None:
    """Make the database refuse every write to `table`, as a full disk would (a trigger)."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for name, what in ((f"full_{table}", "INSERT"), (f"full_{table}_u", "UPDATE")):
                await conn.execute(
                    text(
                        f"CREATE TRIGGER {name} BEFORE {what} ON {table} "
                        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
                    )
                )
        else:
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION disk_full() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device'; "
                    "END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER full_{table} BEFORE INSERT OR UPDATE ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION disk_full()"
                )
            )


async def accept_writes(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(text(f"DROP TRIGGER full_{table}"))
            await conn.execute(text(f"DROP TRIGGER full_{table}_u"))
        else:
            await conn.execute(text(f"DROP TRIGGER full_{table} ON {table}"))
