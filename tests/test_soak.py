"""The load/soak test (bench/soak.py), small and short: the same code path, with assertions.

100 picows clients on two `quantsaas serve --role api` processes behind a real redis-server and
one ingest process, for 16 s: every client gets data in every sampled interval, every stream's
seq goes up by exactly one (no gap, no re-snapshot, no error, no disconnect), and no server
process grows by more than a few MiB after the warm-up. The full run (1,000 clients, 5 minutes)
and its figures are in bench/README.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest

from test_scale_out import REDIS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import soak  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not Path(REDIS).exists(), reason="redis-server missing"),
    pytest.mark.skipif(importlib.util.find_spec("picows") is None, reason="picows missing (dev)"),
]

GROWTH_LIMIT_MIB = 8.0
"""Largest RSS growth of a server process over the 12 s after the warm-up."""


def test_soak_clients_get_gap_free_data_and_the_servers_do_not_grow() -> None:
    opts = soak.Options(
        clients=100, duration_s=16, apis=2, rate=5, warmup_s=4, sample_s=4, client_procs=1
    )
    opts.quiet = True
    summary = asyncio.run(soak.run(opts))
    assert summary.ready == 100
    assert len(summary.intervals) == 4 and len(summary.warm) == 3
    assert summary.never == 0
    assert all(interval.silent == 0 for interval in summary.intervals)
    assert (summary.gaps, summary.seq_errors, summary.missing) == (0, 0, 0)
    assert (summary.resnapshots, summary.errors, summary.disconnected) == (0, 0, 0)
    # 4 symbols x (trades + book + ticker) at --rate 5: tens of messages/s for every client
    assert summary.per_client_per_s > 10
    assert summary.p99_ms < 5_000
    for api in ("api0", "api1"):
        assert summary.metrics[api]["ws_clients"] == 50
        assert summary.metrics[api]["redis_connected"] == 1
        assert summary.metrics[api]["bus_dropped"] == 0
    servers = [growth for growth in summary.rss if growth.name in ("ingest", "api0", "api1")]
    assert len(servers) == 3
    for growth in servers:
        assert growth.after_warmup_mib > 50, growth  # the samples are real
        assert growth.growth_mib < GROWTH_LIMIT_MIB, growth
