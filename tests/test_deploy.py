"""deploy/: the Dockerfile passes hadolint, and the image's exact CMD and HEALTHCHECK work here.

No Docker engine runs on this machine, so the image's command is run from the venv instead,
with the port and data directory swapped for a free port and a temporary directory.
"""

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from test_cli import wait_for_url

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "deploy" / "compose.yaml"
BIN = Path(sys.executable).parent


def hadolint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--format", "json", "--no-fail", "--disable-ignore-pragma", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    return findings


def test_dockerfile_passes_hadolint_without_any_finding() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_report_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install flask\nCMD python -m flask run\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3013", "DL3025"} <= codes


def instructions(name: str) -> list[str]:
    """The Dockerfile's `name` instructions of the final stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    final = text.rsplit("\nFROM ", 1)[1]
    return [line.split(None, 1)[1] for line in final.splitlines() if line.startswith(name + " ")]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in instructions("ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_final_stage_is_slim_non_root_and_has_no_build_tools() -> None:
    text = DOCKERFILE.read_text()
    final = text.rsplit("\nFROM ", 1)[1]
    assert final.startswith("python:3.11-slim")
    assert instructions("USER") == ["10001:10001"]
    assert "apt-get" not in final and "pip install" not in final and "npm" not in final
    assert text.count("\nFROM ") + text.startswith("FROM ") == 3


def test_compose_has_ingest_api_replicas_redis_and_postgres() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"ingest", "api", "redis", "postgres"}
    assert all("healthcheck" in services[name] for name in ("redis", "postgres"))
    for name in ("ingest", "api"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert services[name]["image"] == "quantsaas:latest"
        assert set(services[name]["depends_on"]) == {"redis", "postgres"}
    assert services["api"]["deploy"]["replicas"] >= 2
    assert "volumes" not in services["api"]  # API processes record nothing
    assert services["ingest"]["volumes"] == ["data:/data"]


def test_compose_commands_are_valid_serve_commands_on_one_bus() -> None:
    """Each service's command parses with the real CLI: one ingest and the api replicas on the
    same Redis URL, which names the compose service `redis`; the image's own arguments kept."""
    from quantsaas.cli import parser

    services = yaml.safe_load(COMPOSE.read_text())["services"]
    (image_cmd,) = instructions("CMD")
    parsed = {}
    for name in ("ingest", "api"):
        command = services[name]["command"]
        assert all(isinstance(arg, str) for arg in command)
        assert command[0] == "quantsaas"
        args = parser().parse_args(command[1:])
        assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 8000)
        parsed[name] = args
    assert parsed["ingest"].role == "ingest" and parsed["api"].role == "api"
    assert parsed["ingest"].bus == parsed["api"].bus == "redis://redis:6379/0"
    assert services["redis"]["image"].startswith("redis:")
    ingest = services["ingest"]["command"]
    assert ingest[: len(json.loads(image_cmd))] == json.loads(image_cmd)  # --data-dir /data
    # the processes share accounts (PostgreSQL) and rate limits (the same Redis)
    for name in ("ingest", "api"):
        env = services[name]["environment"]
        assert env["QUANTSAAS_RATE_LIMIT_BUS"] == parsed["api"].bus
        assert env["QUANTSAAS_ACCOUNTS_URL"].startswith("postgresql+asyncpg://")
        assert "@postgres:5432/" in env["QUANTSAAS_ACCOUNTS_URL"]
        assert env["QUANTSAAS_LOG_FORMAT"] == "json"


def test_the_image_cmd_serves_and_its_healthcheck_passes(tmp_path: Path) -> None:
    (cmd,) = instructions("CMD")
    argv: list[str] = json.loads(cmd)
    assert argv == [
        "quantsaas", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data"
    ]  # fmt: skip
    port = free_port()
    swapped = {"8000": str(port), "/data": str(tmp_path / "data")}
    argv = [str(BIN / argv[0]), *(swapped.get(arg, arg) for arg in argv[1:])]
    env = {**os.environ, **image_env(), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env["QUANTSAAS_WEB_DIST"] = ""  # the image's dist path does not exist here
    assert env["QUANTSAAS_LOG_FORMAT"] == "json"
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        base = wait_for_url(process)
        assert base == f"http://0.0.0.0:{port}"
        livez = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=5)
        assert livez.status_code == 200 and livez.json() == {"status": "ok"}
        (health,) = instructions("HEALTHCHECK")
        probe: list[str] = json.loads(health.split("CMD", 1)[1])
        probe = [arg.replace(":8000/", f":{port}/") for arg in probe]
        assert probe[0] == "python"
        checked = subprocess.run([sys.executable, *probe[1:]], timeout=15, env=env)
        assert checked.returncode == 0
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert all(json.loads(line) for line in stderr.splitlines() if line.strip())
    assert (tmp_path / "data").is_dir()
