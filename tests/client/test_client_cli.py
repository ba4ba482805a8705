"""`quantsaas tail` against a real server: readable lines, JSON lines for pipes, a clear error
and status 1 for what cannot work."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from client_server import Server, serving
from quantsaas.cli import main


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("client-cli"), "--rate", "200", "--no-record") as running:
        yield running


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def tail(server: Server, capsys: pytest.CaptureFixture[str]) -> Callable[..., Done]:
    """`quantsaas tail --url <server> ...` run in this process (the CLI's own main)."""

    def run(*args: str) -> Done:
        status = main(["tail", "--url", server.base, *args])
        out, err = capsys.readouterr()
        return Done(status, out, err)

    return run


def test_json_lines_for_pipes(server: Server) -> None:
    """The real console command, as a pipe sees it."""
    command = [sys.executable, "-m", "quantsaas.cli", "tail", "BTC/USD", "--url", server.base]
    done = subprocess.run(
        [*command, "--venue", "sim", "--json", "--count", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 5 and {line["type"] for line in lines} == {"trade"}
    assert all(line["symbol"] == "BTC/USD" and "." in line["price"] for line in lines)
    ids = [int(line["id"]) for line in lines]
    assert ids == list(range(ids[0], ids[0] + 5))


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        ("book", ["bids", "asks", "@"]),
        ("ticker", ["bid", "ask", "last"]),
        ("candles", ["O ", "C "]),
    ],
)
def test_readable_lines_per_channel(
    tail: Callable[..., Done], channel: str, words: list[str]
) -> None:
    extra = ["--interval", "1s"] if channel == "candles" else []
    done = tail("BTC-USD", "--channel", channel, "--count", "2", "--depth", "2", *extra)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all("sim BTC/USD" in line for line in lines)
    assert all(word in lines[0] for word in words)


def test_errors_are_one_line_and_status_one(
    tail: Callable[..., Done], capsys: pytest.CaptureFixture[str]
) -> None:
    done = tail("DOGE/USD", "--count", "1")
    assert done.returncode == 1 and "UnknownSymbol" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert main(["tail", "BTC/USD", "--url", "http://127.0.0.1:9"]) == 1
    assert "ServerGone" in capsys.readouterr().err
