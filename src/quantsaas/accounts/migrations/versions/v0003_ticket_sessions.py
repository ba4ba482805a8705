"""WebSocket tickets remember the session they were minted under (they die with it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("ws_tickets", sa.Column("session_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ws_tickets") as batch:
        batch.drop_column("session_digest")
