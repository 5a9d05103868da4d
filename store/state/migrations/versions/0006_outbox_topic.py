"""The outbox's MQTT topic as a column of its own.

Revision ID: 0006
Revises: 0005

A topic row's receiver was only in its ``target`` key (``topic:<topic>``); delivery now builds
the typed target from columns (``target_kind`` with ``subscription_id`` or ``topic``) and keeps
``target`` as the per-receiver FIFO key it only compares. Rows from before this revision get
their topic from their key here, once: the last time the key is read.

Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PREFIX = "topic:"
# substr(text, start) is 1-based in both SQLite and PostgreSQL.
FILL = f"UPDATE outbox SET topic = substr(target, {len(PREFIX) + 1}) WHERE target_kind = 'topic'"


def upgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        b.add_column(sa.Column("topic", sa.String(512), nullable=True))
    op.execute(FILL)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as b:
        b.drop_column("topic")
