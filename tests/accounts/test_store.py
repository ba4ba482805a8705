"""The accounts database: Alembic migrations from empty, SQLite settings, URL handling."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from quantsaas.accounts.models import ApiKey, Base, User
from quantsaas.accounts.service import Accounts
from quantsaas.accounts.store import _set_wal, downgrade, make_engine, migrate, safe_url
from quantsaas.accounts.tiers import load_tiers
from quantsaas.errors import StorageError

pytestmark = pytest.mark.usefixtures("fast_passwords")

TABLES = {"users", "api_keys", "sessions", "ws_tickets", "audit_events", "account_changes"}
TABLES |= {"service_state", "login_addresses"}
HEAD = "0003"


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


@pytest.mark.asyncio
async def test_migrations_create_every_table_from_empty_and_match_the_models(
    accounts_url: str,
) -> None:
    engine = make_engine(accounts_url)
    try:
        async with engine.connect() as conn:
            assert not (await conn.run_sync(_tables)) & TABLES
        await migrate(engine)
        await migrate(engine)  # idempotent
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == TABLES | {"alembic_version"}
            assert await conn.scalar(text("SELECT version_num FROM alembic_version")) == HEAD
            assert await conn.run_sync(_differences) == []
        await downgrade(engine, "base")
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) == {"alembic_version"}
    finally:
        await engine.dispose()


@pytest.mark.asyncio
async def test_processes_starting_together_migrate_once(accounts_url: str) -> None:
    opened = await asyncio.gather(*(Accounts.open(accounts_url, load_tiers()) for _ in range(4)))
    try:
        assert all([await accounts.ping() for accounts in opened])
        await opened[0].add_user("a@b.c", "password123")
        assert [u.email for u in await opened[3].list_users()] == ["a@b.c"]
    finally:
        for accounts in opened:
            await accounts.close()


def test_connections_racing_to_put_a_new_file_in_wal_mode_all_get_it(tmp_path: Path) -> None:
    """Processes opening a new SQLite file together: switching it to WAL takes a lock SQLite
    does not wait for, and ~3 % of 4-way races here got "database is locked" (seen in CI as a
    failed `Accounts.open`). 200 races: without the wait, one fails almost surely."""
    for run in range(200):
        path = tmp_path / f"race{run}.db"
        modes: list[str] = []
        errors: list[Exception] = []

        def open_one(
            path: Path = path, modes: list[str] = modes, errors: list[Exception] = errors
        ) -> None:
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                _set_wal(connection.cursor())
                modes.append(connection.execute("PRAGMA journal_mode").fetchone()[0])
            except sqlite3.Error as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and modes == ["wal"] * 4, (run, errors)


@pytest.mark.asyncio
async def test_deleting_a_user_cascades_to_keys(accounts_url: str) -> None:
    """Foreign keys are enforced (SQLite needs PRAGMA foreign_keys on every connection)."""
    accounts = await Accounts.open(accounts_url, load_tiers())
    try:
        user = await accounts.add_user("a@b.c", "password123")
        await accounts.create_key(user.id, "k")
        engine = make_engine(accounts_url)
        try:
            async with engine.begin() as conn:
                with pytest.raises(IntegrityError, match="(?i)foreign key"):
                    async with conn.begin_nested():
                        await conn.execute(
                            insert(ApiKey).values(
                                key_id="0" * 12,
                                user_id=999,
                                name="orphan",
                                digest="0" * 64,
                                created_at=user.created_at,
                            )
                        )
                await conn.execute(delete(User).where(User.id == user.id))
                assert (await conn.execute(select(ApiKey))).all() == []
        finally:
            await engine.dispose()
    finally:
        await accounts.close()


@pytest.mark.asyncio
async def test_sqlite_file_gets_its_directory_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "accounts.db"
    accounts = await Accounts.open(f"sqlite+aiosqlite:///{path}", load_tiers())
    try:
        assert path.exists()
        engine = make_engine(f"sqlite+aiosqlite:///{path}")
        async with engine.connect() as conn:
            assert await conn.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await conn.scalar(text("PRAGMA foreign_keys")) == 1
        await engine.dispose()
    finally:
        await accounts.close()


@pytest.mark.asyncio
async def test_an_unreachable_database_raises_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        await Accounts.open("postgresql+asyncpg://u:s3cret@127.0.0.1:1/x", load_tiers())
    assert "s3cret" not in str(caught.value) and "127.0.0.1:1" in str(caught.value)


def test_safe_url_hides_the_password() -> None:
    assert safe_url("postgresql+asyncpg://u:pw@h/db") == "postgresql+asyncpg://u:***@h/db"
    assert safe_url("::") == "<invalid url>"


def test_head_revision_is_alembics_head() -> None:
    # read from the scripts without Alembic, so an up-to-date start-up never imports it
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from quantsaas.accounts.store import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
