"""What each role loads: a process imports only the code and the libraries its role runs
(bench/README.md, start-up and memory). Every check runs in a fresh interpreter, built the way
`quantsaas serve` builds it, and reads its `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers

NOWHERE = "redis://127.0.0.1:1/0"  # never connected: the parts are only built
WATCHED = (
    "quantsaas.feeds",
    "quantsaas.feeds.binance",
    "quantsaas.feeds.coinbase",
    "quantsaas.feeds.kraken",
    "quantsaas.feeds.deribit",
    "quantsaas.engine",
    "quantsaas.fakes",
    "quantsaas.replay_raw",
    "scipy",
    "duckdb",
    "pyarrow",
    "alembic",
    "redis",
    "httpx",
    "sqlalchemy",
)


def loaded_after(code: str, cwd: Path) -> set[str]:
    """The WATCHED packages (or any of their modules) imported by `code` in a new interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json, sys
        watched = {WATCHED!r}
        print(json.dumps(sorted(
            w for w in watched if any(m == w or m.startswith(w + ".") for m in sys.modules)
        )))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def serve_like(args: list[str], record: bool) -> str:
    """Build the runtime, the app and the server config as cli.serve does, without serving."""
    return f"""
        from quantsaas import runtime
        from quantsaas.api.app import create_app
        from quantsaas.cli import parser, server_config, settings_from
        from quantsaas.history_cli import with_store_options

        args = parser().parse_args({["serve", *args]!r})
        settings = with_store_options(settings_from(args), args)
        built = runtime.build(settings, args.role, bus_url=args.bus, record={record!r})
        server_config(create_app(built), settings, "warning")
        assert built.parts() >= {{"bus", "read_model"}}
        """


def test_an_api_process_loads_no_feed_engine_store_writer_or_history_code(tmp_path: Path) -> None:
    loaded = loaded_after(serve_like(["--role", "api", "--bus", NOWHERE], record=False), tmp_path)
    assert loaded == {"redis"}  # its bus is Redis; no feed, engine, fakes, Parquet or DuckDB
    # nor SQLAlchemy yet: the accounts open beside the listening server (api/app.py)


def test_the_all_role_loads_no_scipy_duckdb_alembic_or_venue_code(tmp_path: Path) -> None:
    # the simulator and the engine run here; PyArrow and DuckDB wait for a history query,
    # Alembic for a schema that needs migrating, SQLAlchemy for the accounts, which open once
    # the server listens (api/app.py)
    loaded = loaded_after(serve_like(["--data-dir", str(tmp_path)], record=True), tmp_path)
    assert loaded == {"quantsaas.feeds", "quantsaas.engine"}  # the simulator's, no venue's


def test_recording_and_compacting_load_no_pyarrow_or_duckdb_in_the_process(
    tmp_path: Path,
) -> None:
    # the recorder writes its parts itself (parquet_write.py) and compacts in a child process
    code = f"""
        import asyncio, sys
        from pathlib import Path
        from quantsaas import runtime
        from quantsaas.config import Settings

        root = Path({str(tmp_path)!r})
        built = runtime.build(Settings(web_dist=None, data_dir=root), "all", record=True)
        recorder = built.recorder

        async def run_briefly() -> None:
            task = asyncio.create_task(built.run())
            await asyncio.sleep(0.5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(run_briefly())  # the recorder's stop flushes what the simulator sent
        assert recorder is not None and recorder.status.files > 0
        for part in root.rglob("*.part.parquet"):  # one slot back: over, so compacted next
            slot, rest = part.name.split("-", 1)
            part.rename(part.with_name(f"{{int(slot) - 1}}-{{rest}}"))
        recorder.maintain()
        assert recorder.status.last_error is None, recorder.status.last_error
        assert not list(root.rglob("*.part.parquet"))
        assert list((root / "candles1s").rglob("*.parquet"))  # rollups, built by DuckDB
        """
    assert loaded_after(code, tmp_path) == {"quantsaas.feeds", "quantsaas.engine"}
    query = f"""
        from pathlib import Path
        from quantsaas.store.history import HistoryStore

        store = HistoryStore(Path({str(tmp_path)!r}))
        instruments = store.instruments()
        assert instruments and "duckdb" not in __import__("sys").modules
        assert store.extent(instruments, 0, 2**62)[0] > 0
        """
    assert loaded_after(query, tmp_path) == {"pyarrow", "duckdb"}  # a query loads both


@pytest.mark.asyncio
async def test_a_restart_on_an_up_to_date_schema_loads_no_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/accounts.db"
    opened = await Accounts.open(url, load_tiers())  # migrates the fresh database
    await opened.close()
    code = f"""
        import asyncio
        from quantsaas.accounts.service import Accounts
        from quantsaas.accounts.tiers import load_tiers

        async def reopen() -> None:
            accounts = await Accounts.open({url!r}, load_tiers())
            assert await accounts.ping()
            await accounts.close()

        asyncio.run(reopen())
        """
    assert "alembic" not in loaded_after(code, tmp_path)
    fresh = code.replace("accounts.db", "fresh.db")
    assert "alembic" in loaded_after(fresh, tmp_path)  # an empty database is migrated


def test_constants_named_twice_to_keep_the_light_modules_light_agree() -> None:
    from quantsaas import readmodel
    from quantsaas.backtest import cli as backtest_cli
    from quantsaas.backtest import runner
    from quantsaas.feeds import base

    assert readmodel.STALE_AFTER_S == base.STALE_AFTER_S
    assert backtest_cli.DATA_KINDS == runner.DATA_KINDS
    from quantsaas.client import _async
    from quantsaas.client import cli as client_cli

    assert client_cli.DEFAULT_URL == _async.DEFAULT_URL
