"""The accounts database engine: URL handling, SQLite pragmas and Alembic migrations.

Alembic (about 10 MiB and 100 ms to import) is loaded only when the schema is not at the newest
revision: a start-up first reads `alembic_version` and compares it with the newest revision named
in migrations/versions/ (`head_revision`), which is all a restart of an up-to-date service does.
"""

from __future__ import annotations

import re
import sqlite3
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_REVISION = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(None|['\"]([^'\"]+)['\"])", re.M)
IMMEDIATE = {"sqlite_begin": "IMMEDIATE"}
"""Execution options of write transactions: on SQLite take the write lock at BEGIN, so two
processes never both read and then fail to upgrade to writing (SQLITE_BUSY)."""


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def make_engine(url: str) -> AsyncEngine:
    """An async engine for `url`; on SQLite: foreign keys on, WAL, our own BEGIN statements."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # the driver's implicit transactions do not cover DDL or SELECTs; ours do (see _begin)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if database and database != ":memory:":
            _set_wal(cursor)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


WAL_WAIT_S = 10.0


def _set_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, waiting for the lock it needs. Switching a file's journal
    mode takes an exclusive lock, and SQLite does not call the busy handler for it: processes
    opening a new database together got "database is locked" at once (~3 % of 4-way races on
    this machine; tests/accounts/test_store.py races 200 times). Once a file is in WAL mode
    the pragma changes nothing and takes no such lock."""
    deadline = time.monotonic() + WAL_WAIT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)  # only ever while another connection switches the same new file


@cache
def head_revision() -> str:
    """The newest revision of migrations/versions/ (the one no other revises), read from the
    scripts' `revision = ...` and `down_revision = ...` lines without importing Alembic."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for name, _, value in _REVISION.findall(script.read_text("utf-8")):
            if value:
                (revisions if name == "revision" else revised).add(value)
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"migrations/versions/ has {len(heads)} heads: {sorted(heads)}")
    return heads.pop()


def _revisions(connection: Connection) -> set[str]:
    if not inspect(connection).has_table("alembic_version"):
        return set()
    return {row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")}


def alembic_config(connection: Connection) -> Config:
    """Alembic configured in code (no alembic.ini): our scripts, this connection."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # several API processes may start at once: one migrates, the others wait here
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7263841)")
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(connection), revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; concurrent callers are serialised). At the
    newest revision already, one read of `alembic_version` and no Alembic."""
    if revision == "head":
        async with engine.connect() as connection:
            if await connection.run_sync(_revisions) == {head_revision()}:
                return
    async with engine.execution_options(**IMMEDIATE).begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    async with engine.execution_options(**IMMEDIATE).begin() as connection:
        await connection.run_sync(_downgrade, revision)
