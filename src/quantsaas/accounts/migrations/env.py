"""Alembic environment: runs on the connection the caller passes in
`config.attributes["connection"]` (Accounts.open does it inside `conn.run_sync`)."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from quantsaas.accounts.models import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("accounts migrations run through quantsaas.accounts.service.migrate")
run(_connection)
