"""`quantsaas users|keys|tiers|audit` end to end (in process, and one real subprocess)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from quantsaas.accounts.keys import parse_key
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.tiers import load_tiers
from quantsaas.cli import main
from quantsaas.config import Settings

pytestmark = pytest.mark.usefixtures("fast_passwords")

QUANTSAAS = Path(sys.executable).parent / "quantsaas"


@pytest.fixture(autouse=True)
def _default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged tiers (tests/conftest.py points every test at open_tiers.toml)."""
    for name in ("QUANTSAAS_TIERS_FILE", "QUANTSAAS_ACCOUNTS_URL"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def test_users_keys_and_audit(
    accounts_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ("--db", accounts_url)
    stdin(monkeypatch, "password123\n")
    assert run(capsys, "users", "add", "A@B.c", "--tier", "pro", "--password-stdin", *db) == (
        0,
        "",
        "user a@b.c created (id 1, tier pro)\n",
    )
    stdin(monkeypatch, "")  # not a terminal: a password is generated and printed
    code, out, _ = run(capsys, "users", "add", "root@b.c", "--admin", *db)
    generated = out.strip()
    assert code == 0 and len(generated) >= 16 and "\n" not in generated

    code, out, err = run(capsys, "keys", "create", "a@b.c", "--name", "bot", *db)
    key_id = parse_key(out.strip())
    assert code == 0 and key_id is not None and key_id in err
    code, out, _ = run(capsys, "keys", "list", "a@b.c", *db)
    assert code == 0 and key_id in out and "bot" in out and "live" in out

    code, out, _ = run(capsys, "users", "list", *db)
    lines = out.splitlines()
    assert lines[0].split() == ["id", "email", "tier", "admin", "disabled", "created"]
    assert lines[1].split()[:3] == ["1", "a@b.c", "pro"]
    assert lines[2].split()[:4] == ["2", "root@b.c", "free", "yes"]

    assert run(capsys, "users", "set-tier", "a@b.c", "enterprise", *db)[0] == 0
    assert run(capsys, "users", "disable", "a@b.c", *db)[0] == 0
    assert run(capsys, "users", "enable", "a@b.c", *db)[0] == 0
    assert run(capsys, "keys", "revoke", key_id, *db)[0] == 0
    code, out, _ = run(capsys, "keys", "list", "a@b.c", *db)
    assert "revoked" in out and "live" not in out

    async def check() -> None:
        accounts = await Accounts.open(accounts_url, load_tiers())
        try:
            assert await accounts.authenticate("a@b.c", "password123") is not None
            root = await accounts.authenticate("root@b.c", generated)
            assert root is not None and root.is_admin
            assert (await accounts.find_user("a@b.c")).tier == "enterprise"
        finally:
            await accounts.close()

    asyncio.run(check())
    code, out, _ = run(capsys, "audit", "--limit", "3", *db)
    assert code == 0
    assert [line.split()[1] for line in out.splitlines()[1:]] == [
        "key.revoked",
        "user.enabled",
        "user.disabled",
    ]


def test_errors_are_reported_with_status_2(
    accounts_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = ("--db", accounts_url)
    stdin(monkeypatch, "password123\n")
    assert run(capsys, "users", "add", "a@b.c", "--password-stdin", *db)[0] == 0
    for argv, message in [
        (("users", "add", "a@b.c", "--password-stdin"), "exists already"),
        (("users", "add", "x@b.c", "--password-stdin", "--tier", "free"), "at least 8"),
        (("users", "set-tier", "a@b.c", "gold"), "unknown tier 'gold'"),
        (("users", "disable", "x@b.c"), "no user x@b.c"),
        (("keys", "revoke", "0123456789ab"), "no API key"),
        (("keys", "list", "nobody@b.c"), "no user"),
    ]:
        stdin(monkeypatch, "short\n" if "x@b.c" in argv else "password456\n")
        code, out, err = run(capsys, *argv, *db)
        assert (code, out) == (2, ""), argv
        assert err.startswith("quantsaas: error: ") and message in err, err
    for _ in range(2):
        assert run(capsys, "keys", "create", "a@b.c", *db)[0] == 0
    code, _, err = run(capsys, "keys", "create", "a@b.c", *db)
    assert code == 2 and "allows 2 live API key" in err


def test_tiers_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tiers")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert list(rows) == ["tier", "demo", "free", "pro", "enterprise"]
    assert rows["free"][1:4] == ["all", "BTC/USD,ETH/USD", "trades,ticker,book,candles,history"]
    assert rows["free"][-2:] == ["60/60s", "2"]


def test_the_settings_choose_database_and_tiers_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(
        "[tiers.solo]\nbook_interval_ms = 0\nws_connections = 1\nws_subscriptions = 1\n"
        "ws_inbound_per_s = 1\nhistory_days = 1\nrequests = 1\nwindow_s = 1\napi_keys = 1\n"
    )
    monkeypatch.setenv("QUANTSAAS_TIERS_FILE", str(tiers))
    monkeypatch.setenv("QUANTSAAS_ACCOUNTS_URL", f"sqlite+aiosqlite:///{tmp_path}/env.db")
    assert run(capsys, "tiers")[1].splitlines()[1].split()[0] == "solo"
    stdin(monkeypatch, "password123\n")
    assert run(capsys, "users", "add", "a@b.c", "--tier", "solo", "--password-stdin")[0] == 0
    assert (tmp_path / "env.db").exists()
    monkeypatch.setenv("QUANTSAAS_TIERS_FILE", str(tmp_path / "missing.toml"))
    code, _, err = run(capsys, "tiers")
    assert code == 2 and "missing.toml" in err


def test_the_installed_command_prints_only_the_key_on_stdout(tmp_path: Path) -> None:
    env = {**os.environ, "QUANTSAAS_ACCOUNTS_URL": f"sqlite+aiosqlite:///{tmp_path}/a.db"}

    def quantsaas(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(QUANTSAAS), *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )

    added = quantsaas("users", "add", "a@b.c", "--password-stdin", stdin="password123\n")
    assert added.returncode == 0, added.stderr
    created = quantsaas("keys", "create", "a@b.c")
    assert created.returncode == 0, created.stderr
    assert parse_key(created.stdout.strip()) is not None
    assert created.stdout.count("\n") == 1


def test_accounts_live_apart_from_the_recording_unless_an_old_install_has_them_there(
    tmp_path: Path,
) -> None:
    def settings(accounts_url: str = "") -> Settings:
        data, accounts = tmp_path / "data", tmp_path / "accounts"
        return Settings(data_dir=data, accounts_dir=accounts, accounts_url=accounts_url)

    fresh = settings()
    assert fresh.accounts_database == f"sqlite+aiosqlite:///{tmp_path}/accounts/accounts.db"
    assert not fresh.legacy_accounts_file
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "accounts.db").write_bytes(b"")  # written by an older version
    old = settings()
    assert old.accounts_database == f"sqlite+aiosqlite:///{tmp_path}/data/accounts.db"
    assert old.legacy_accounts_file
    (tmp_path / "accounts").mkdir()
    (tmp_path / "accounts" / "accounts.db").write_bytes(b"")  # moved (a copy is left behind)
    assert settings().accounts_file == tmp_path / "accounts" / "accounts.db"
    assert settings("postgresql+asyncpg://h/db").legacy_accounts_file is False


def test_account_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("QUANTSAAS_ANONYMOUS_TIER", "QUANTSAAS_ALLOWED_ORIGINS", "QUANTSAAS_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings(data_dir=Path("/srv/qs"), accounts_dir=Path("/srv/qs-accounts"))
    assert defaults.accounts_database == "sqlite+aiosqlite:////srv/qs-accounts/accounts.db"
    assert (defaults.tiers_file, defaults.anonymous_tier, defaults.allowed_origins) == (
        None,
        None,
        (),
    )
    assert (defaults.session_ttl_s, defaults.ws_ticket_ttl_s) == (7 * 86400.0, 30.0)
    assert (defaults.rate_limit_bus, defaults.public_market_data_delay_s) == ("memory", 60.0)
    monkeypatch.setenv("QUANTSAAS_ALLOWED_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("QUANTSAAS_ANONYMOUS_TIER", "demo")
    configured = Settings()
    assert configured.allowed_origins == ("https://a.example", "https://b.example")
    assert configured.anonymous_tier == "demo"
    with pytest.raises(ValidationError):
        Settings(session_ttl_s=0)
