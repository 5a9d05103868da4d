"""The notify tables: a subject-generic outbox (alert and hazard events) with its routing columns.

Revision ID: 0004
Revises: 0003

Outbox rows gain ``subject``/``subject_id``/``event_key`` (hazard rows have no alert event, so
``event_id`` and ``alert_id`` become nullable and dedup moves to ``(event_key, target)``),
``target_kind``, ``site`` and ``metric`` (filled for existing rows from their alert); subscriptions
gain ``admin_scope``.

Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FILL = """
UPDATE outbox SET
  subject = 'alert',
  subject_id = CAST(alert_id AS VARCHAR(64)),
  event_key = CAST(event_id AS VARCHAR(64)),
  target_kind = CASE WHEN target LIKE 'sub:%' THEN 'subscription' ELSE 'topic' END,
  site = COALESCE((SELECT alerts.site FROM alerts WHERE alerts.id = outbox.alert_id), ''),
  metric = (SELECT alerts.metric FROM alerts WHERE alerts.id = outbox.alert_id)
"""


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as b:
        b.add_column(sa.Column("admin_scope", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("outbox") as b:
        for name, size in (("subject", 16), ("subject_id", 64), ("event_key", 64), ("target_kind", 16),
                           ("site", 64), ("metric", 64)):
            b.add_column(sa.Column(name, sa.String(size), nullable=True))
    op.execute(FILL)
    with op.batch_alter_table("outbox") as b:
        for name, size in (("subject", 16), ("subject_id", 64), ("event_key", 64), ("target_kind", 16),
                           ("site", 64)):
            b.alter_column(name, existing_type=sa.String(size), nullable=False)
        b.alter_column("event_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                       nullable=True)
        b.alter_column("alert_id", existing_type=sa.BigInteger(), nullable=True)
        b.drop_constraint("uq_outbox_event_target", type_="unique")
        b.create_unique_constraint("uq_outbox_event_key_target", ["event_key", "target"])


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE subject != 'alert'")
    with op.batch_alter_table("outbox") as b:
        b.drop_constraint("uq_outbox_event_key_target", type_="unique")
        b.create_unique_constraint("uq_outbox_event_target", ["event_id", "target"])
        b.alter_column("event_id", existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                       nullable=False)
        b.alter_column("alert_id", existing_type=sa.BigInteger(), nullable=False)
        for name in ("subject", "subject_id", "event_key", "target_kind", "site", "metric"):
            b.drop_column(name)
    with op.batch_alter_table("subscriptions") as b:
        b.drop_column("admin_scope")
