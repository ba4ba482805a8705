"""Structured logs: JSON lines from a real `quantsaas serve`, request ids, no secrets."""

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from typing import Any

import httpx
import pytest

from helpers import ScriptedFeed, engine_of, make_instrument, make_runtime, snapshot
from quantsaas.logs import JsonFormatter, TextFormatter, request_id
from test_cli import wait_for_url, wait_live

SECRET = "mk_live_abc_0123456789secretsecret"


def record(message: str, **extra: Any) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": message, **extra})


def test_json_lines_carry_context_and_never_secrets() -> None:
    token = request_id.set("req-1")
    try:
        line = JsonFormatter().format(
            record(
                "hello\nworld",
                venue="sim",
                symbol="BTC/USD",
                api_key=SECRET,
                headers={"Authorization": f"Bearer {SECRET}", "X-API-Key": SECRET, "Accept": "*"},
            )
        )
    finally:
        request_id.reset(token)
    assert "\n" not in line and SECRET not in line
    event = json.loads(line)
    assert event["msg"] == "hello\\x0aworld" and event["level"] == "info"
    assert event["venue"] == "sim" and event["symbol"] == "BTC/USD"
    assert event["request_id"] == "req-1"
    assert event["api_key"] == "[redacted]"
    assert event["headers"] == {
        "Authorization": "[redacted]",
        "X-API-Key": "[redacted]",
        "Accept": "*",
    }
    assert event["ts"].endswith("Z")


ATTACK = "x\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\nINFO forged line"


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()])
def test_control_characters_from_outside_never_reach_the_terminal(
    formatter: logging.Formatter,
) -> None:
    try:
        raise ValueError(f"bad input {ATTACK}")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    line = formatter.format(
        record(
            f"login failed for {ATTACK}", email=ATTACK, headers={ATTACK: ATTACK}, exc_info=exc_info
        )
    )
    tail = line.split("\n", 1)[0] if isinstance(formatter, TextFormatter) else line
    for char in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert char not in line
    assert "\n" not in tail and "forged line" in tail
    assert "\\x1b]0;pwned" in line  # written as an escape, still readable
    if isinstance(formatter, TextFormatter):  # a traceback line cannot pass for an event
        assert all(not part or part.startswith("  ") for part in line.split("\n")[1:])


def test_text_lines_are_readable() -> None:
    line = TextFormatter().format(record("book rejected", venue="sim", token=SECRET))
    assert " INFO    t: book rejected " in line
    assert "venue=sim" in line and "token=[redacted]" in line and SECRET not in line


def test_engine_logs_name_the_venue_and_symbol(caplog: pytest.LogCaptureFixture) -> None:
    btc = make_instrument()
    feed = ScriptedFeed([btc])
    engine = engine_of(make_runtime([feed]))
    with caplog.at_level(logging.WARNING, logger="quantsaas.engine"):
        engine.on_event(snapshot(btc, [(10_010, 1)], [(10_000, 1)]))  # crossed: rejected
    event = json.loads(JsonFormatter().format(caplog.records[-1]))
    assert event["venue"] == "test" and event["symbol"] == "BTC/USD"
    assert event["msg"].startswith("book rejected")


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_writes_json_lines_with_request_ids(how: str) -> None:
    data_dir = tempfile.mkdtemp(prefix="quantsaas-test-data-")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "QUANTSAAS_DATA_DIR": data_dir}
    args = [sys.executable, "-m", "quantsaas.cli", "serve", "--port", "0", "--rate", "50"]
    if how == "flag":
        args += ["--log-format", "json"]
    else:
        env["QUANTSAAS_LOG_FORMAT"] = "json"
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        base = wait_for_url(process)
        assert wait_live(base).status_code == 200
        secret_headers = {"Authorization": f"Bearer {SECRET}", "X-API-Key": SECRET}
        given = httpx.get(
            f"{base}/api/v1/instruments?api_key={SECRET}",
            headers={"X-Request-ID": "given-id-42", **secret_headers},
        )
        assert given.headers["x-request-id"] == "given-id-42"
        made = httpx.get(f"{base}/api/v1/book/sim/DOGE-USD", headers=secret_headers)
        assert made.status_code == 401  # an unknown key is refused (and the denial logged)
        generated = made.headers["x-request-id"]
        bad = httpx.get(f"{base}/livez", headers={"X-Request-ID": "bad id\twith spaces"})
        assert bad.headers["x-request-id"] != "bad id\twith spaces"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    lines = [line for line in stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON event
    assert all({"ts", "level", "logger", "msg"} <= event.keys() for event in events)
    assert SECRET not in stderr
    assert "\x1b" not in stderr and not any("color_message" in event for event in events)
    access = {
        event["request_id"]: event for event in events if event["logger"] == "quantsaas.access"
    }
    assert access["given-id-42"]["path"] == "/api/v1/instruments"
    assert access["given-id-42"]["status"] == 401  # a wrong key is refused even on public routes
    assert access[generated]["status"] == 401
    assert any(event["logger"] == "quantsaas.audit" for event in events)
    assert isinstance(access[generated]["duration_ms"], float)
    loggers = {event["logger"] for event in events}
    assert "uvicorn.error" in loggers  # uvicorn's own lines are JSON too
    assert any(event.get("url") == base for event in events)
