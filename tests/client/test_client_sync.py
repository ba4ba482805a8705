"""The blocking Client runs the same code as AsyncClient on a loop thread of its own: plain
`for` loops over streams, DataFrames from history, errors raised in the caller's thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import islice

import pytest

from client_server import Server, serving
from quantsaas.client import Client, UnknownSymbol
from quantsaas.model import BookSnapshot, Trade


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("client-sync"), "--rate", "200") as running:
        yield running


def test_plain_loops_over_streams_and_leaving_one_unsubscribes(server: Server) -> None:
    with Client(server.base) as client:
        trades = list(islice(client.trades("BTC/USD", venue="sim"), 20))
        books = list(islice(client.book("BTC/USD", venue="sim", depth=3), 5))
        assert all(isinstance(t, Trade) for t in trades)
        ids = [int(t.trade_id) for t in trades if isinstance(t, Trade)]
        assert ids == list(range(ids[0], ids[0] + 20))
        assert all(isinstance(b, BookSnapshot) and len(b.asks) == 3 for b in books)
        connection = client._async._connection
        assert connection is not None and not connection.streams.by_key
        assert client.stats.messages > 20 and client.stats.gaps == 0
        assert client.local_book("BTC/USD", "sim") is None  # nobody follows it any more


def test_history_and_errors_in_the_callers_thread(server: Server) -> None:
    time.sleep(1.5)  # some recorded trades
    with Client(server.base) as client:
        frame = client.history.trades("BTC/USD", server.live_ns, time.time_ns(), venue="sim")
        assert len(frame) > 10 and frame["id"].is_unique
        assert len(client.instruments()) == 2
        with pytest.raises(UnknownSymbol):
            next(iter(client.trades("DOGE/USD", venue="sim")))
        with pytest.raises(UnknownSymbol):
            client.fetch_book("DOGE/USD", "sim")
    assert not [t for t in threading.enumerate() if t.name == "quantsaas-client"]
