"""Scale-out on a real redis-server: one ingest and two API processes of `quantsaas serve`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from helpers import REDIS_SERVER, RedisServer

REDIS = REDIS_SERVER
URL = re.compile(r"running on (http://[\d.]+:\d+)/")

pytestmark = pytest.mark.skipif(
    not Path(REDIS).exists(), reason="redis-server missing (scripts/check.sh installs it)"
)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    out: Path
    base: str = ""

    def wait_url(self) -> str:
        def printed() -> bool:
            found = URL.search(self.out.read_text())
            if found:
                self.base = found.group(1)
            assert self.process.poll() is None, self.out.read_text()
            return bool(found)

        wait_until(printed, 30, f"the URL in {self.out}")
        return self.base

    def ready(self) -> int:
        return httpx.get(f"{self.base}/readyz", timeout=5).status_code

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"


def wait_ready(served: Served, status: int, timeout: float) -> None:
    wait_until(lambda: served.ready() == status, timeout, f"{served.base}/readyz {status}")


def serve(tmp: Path, name: str, *args: str) -> Served:
    out = tmp / f"{name}.log"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0", "--no-record", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return Served(process, out)


@dataclass
class Cluster:
    redis: RedisServer
    ingest: Served
    apis: list[Served]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("scale-out")
    redis = RedisServer(tmp)
    redis.start()
    feed = ("--symbols", "BTC/USD,ETH/USD", "--rate", "500", "--seed", "3")
    bus = ("--bus", redis.url)
    ingest = serve(tmp, "ingest", "--role", "ingest", *bus, *feed)
    apis = [serve(tmp, f"api{i}", "--role", "api", *bus, *feed) for i in range(2)]
    everything = [ingest, *apis]
    try:
        for process in everything:
            process.wait_url()
        for process in everything:
            wait_ready(process, 200, 20)
        yield Cluster(redis, ingest, apis)
    finally:
        for process in everything:
            if process.process.poll() is None:
                process.process.terminate()
        for process in everything:
            try:
                process.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.process.kill()
                process.process.wait()
        redis.stop()


@contextlib.contextmanager
def subscribe(url: str, channels: list[str]) -> Iterator[ClientConnection]:
    with connect(url, open_timeout=10, close_timeout=1, max_queue=None) as ws:
        request = {"channels": channels, "symbols": ["BTC/USD"]}
        ws.send(json.dumps({"op": "subscribe", **request}))
        yield ws
        # leave with nothing queued on the server, so the close handshake is quick
        ws.send(json.dumps({"op": "unsubscribe", **request}))
        deadline = time.monotonic() + 10
        while json.loads(ws.recv(timeout=10)).get("type") != "unsubscribed":
            assert time.monotonic() < deadline


def collect(ws: ClientConnection, count: int) -> list[tuple[dict[str, Any], str]]:
    """The next `count` data messages (decoded and as sent)."""
    messages: list[tuple[dict[str, Any], str]] = []
    deadline = time.monotonic() + 20
    while len(messages) < count:
        assert time.monotonic() < deadline, f"only {len(messages)} messages"
        text = ws.recv(timeout=10)
        assert isinstance(text, str)
        message = json.loads(text)
        if "seq" in message or message["type"] == "gap":
            messages.append((message, text))
    return messages


def check_gap_free(messages: list[tuple[dict[str, Any], str]]) -> None:
    book = [m for m, _ in messages if m["channel"] == "book"]
    assert book[0]["type"] == "snapshot"
    last: dict[str, int] = {}
    for message, _ in messages:
        assert message["type"] != "gap", message
        channel, seq = message["channel"], message["seq"]
        if channel in last:
            assert seq == last[channel] + 1, (channel, last[channel], seq)
        last[channel] = seq


def check_recovered(messages: list[tuple[dict[str, Any], str]]) -> None:
    """Gap-free, except that a gap (entries lost with a Redis that died before an API process
    read them) is followed by a fresh snapshot and gap-free data again."""
    last: int | None = None
    resnapshot = False
    for message, _ in messages:
        if message["type"] == "gap":
            resnapshot = True
        elif message["type"] == "snapshot":
            resnapshot, last = False, message["seq"]
        else:
            assert not resnapshot, "a gap must be followed by a snapshot"
            assert last is None or message["seq"] == last + 1, (last, message["seq"])
            last = message["seq"]
    assert not resnapshot and last is not None


def test_api_processes_serve_identical_gap_free_sequences(cluster: Cluster) -> None:
    servers = [*cluster.apis, cluster.ingest]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(subscribe(s.ws, ["book", "trades"])) for s in servers]
        received = [collect(ws, 2000) for ws in clients]
    for messages in received:
        check_gap_free(messages)
    first, second, direct = (
        {(m["channel"], m["seq"]): text for m, text in messages if m["type"] != "snapshot"}
        for messages in received
    )
    common = first.keys() & second.keys() & direct.keys()
    assert len(common) >= 500
    assert all(first[key] == second[key] == direct[key] for key in common)


def test_redis_outage_makes_readyz_fail_then_everything_recovers(cluster: Cluster) -> None:
    with subscribe(cluster.apis[0].ws, ["book"]) as connected:
        before = collect(connected, 10)
        cluster.redis.stop()
        for process in [cluster.ingest, *cluster.apis]:
            wait_ready(process, 503, 15)
        cluster.redis.start()  # the same port, empty (no persistence)
        for process in [cluster.ingest, *cluster.apis]:
            wait_ready(process, 200, 20)
        # what the ingest process published during the outage was kept for it
        after = collect(connected, 500)
    check_recovered(before + after)
    for api in cluster.apis:
        with subscribe(api.ws, ["book", "trades"]) as ws:
            messages = collect(ws, 1500)
        check_gap_free(messages)
        book = [m for m, _ in messages if m["channel"] == "book"]
        assert book[0]["type"] == "snapshot"
        assert book[0]["seq"] > before[-1][0]["seq"]  # taken after the outage
        assert book[-1]["seq"] > after[-1][0]["seq"]  # and data still flowing


def test_a_bus_outage_is_announced_on_the_stream_and_so_is_its_end(cluster: Cluster) -> None:
    with subscribe(cluster.apis[0].ws, ["trades"]) as ws:
        cluster.redis.stop()
        try:
            down = next_status(ws, "down")
        finally:
            cluster.redis.start()
        assert down["source"] == "bus" and "redis" in str(down["reason"])
        live = next_status(ws, "live")
        assert live["source"] == "bus"
    wait_ready(cluster.apis[0], 200, 20)


def next_status(ws: ClientConnection, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=30))
        if message.get("type") == "status" and message["state"] == state:
            assert isinstance(message, dict)
            return message
    raise AssertionError(f"no status {state!r} within 30 s")
