"""Start-up order: the server listens and the runtime runs before the accounts are open
(api/app.py opens them beside it); what needs them waits, probes answer, readiness tells."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from helpers import ScriptedFeed, make_instrument, make_runtime, served_as_cli
from quantsaas.api import app as app_module
from quantsaas.api.app import create_app
from quantsaas.config import Settings


async def connect(url: str) -> ClientConnection:
    return await websockets.connect(url, open_timeout=10)


@pytest.mark.asyncio
async def test_callers_wait_for_the_accounts_while_probes_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = asyncio.Event()
    real_open = app_module.open_guard

    async def held_open(*args: Any, **kwargs: Any) -> Any:
        await gate.wait()  # the real accounts open, once the test lets them
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(app_module, "open_guard", held_open)
    settings = Settings(
        web_dist=None,
        anonymous_tier="open",
        accounts_url=f"sqlite+aiosqlite:///{tmp_path}/accounts.db",
        bootstrap_admin=True,
        host="127.0.0.1",
        port=0,
    )
    app = create_app(make_runtime([ScriptedFeed([make_instrument()])], settings))
    async with served_as_cli(app, settings) as address:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as http:
            assert (await http.get("/livez")).status_code == 200
            health = await asyncio.wait_for(http.get("/health"), 2)  # answers, not waiting
            assert health.json()["feeds"]  # 503 only because the scripted feed is not live
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["accounts_db"] is False
            waiting = asyncio.create_task(http.get("/api/v1/instruments"))
            streaming = asyncio.create_task(connect(f"ws://{address}/ws"))
            await asyncio.sleep(0.3)
            assert not waiting.done() and app.state.guard is None
            gate.set()
            answered = await waiting
            assert answered.status_code == 200, answered.text[:200]
            assert answered.json()["data"][0]["symbol"] == "BTC/USD"
            async with await streaming as ws:
                await ws.send('{"op": "ping"}')
                replies = [await asyncio.wait_for(ws.recv(), 5) for _ in range(2)]
                assert any('"pong"' in str(reply) for reply in replies)
            ready = await http.get("/readyz")
            assert ready.json()["checks"]["accounts_db"] is True
        assert app.state.first_login is not None  # the admin was made once they opened


def test_serve_stops_with_one_clear_line_when_its_accounts_cannot_open(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QUANTSAAS_DATA_DIR": str(tmp_path),
        "QUANTSAAS_ACCOUNTS_URL": "postgresql+asyncpg://user:secret@127.0.0.1:1/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("quantsaas: error:")]
    assert len(errors) == 1 and "accounts" in errors[0] and "Connection refused" in errors[0]
    assert "secret" not in done.stderr
    assert "running on" not in done.stdout  # no banner for a service that cannot let anyone in


def test_ctrl_c_while_the_accounts_are_still_opening_stops_cleanly(tmp_path: Path) -> None:
    """A database that accepts but never answers keeps the accounts opening; a stop then ends
    the process at once with status 0 and no traceback."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        env = {
            **os.environ,
            "QUANTSAAS_DATA_DIR": str(tmp_path),
            "QUANTSAAS_ACCOUNTS_URL": f"postgresql+asyncpg://user:secret@127.0.0.1:{port}/none",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 30
            while "Uvicorn running" not in process.stderr.readline():
                assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.5)  # the accounts are waiting on the silent database
            assert process.poll() is None
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err[-1000:]
    assert "Traceback" not in err and "running on" not in out
