"""The supervision tables (second round): hazards, their alerts, departments, events, overdue
steps and attachments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("state != 'closed'")


def _hazard_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["hazard_id"], ["hazards.id"], ondelete="CASCADE",
                                   name=f"fk_{table}_hazard_id_hazards")


def upgrade() -> None:
    op.create_table(
        "hazards",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("family", sa.String(32), nullable=False),
        sa.Column("street", sa.String(64), nullable=False),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("listed_ms", sa.BigInteger(), nullable=False),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=True),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("closed_ms", sa.BigInteger(), nullable=True),
        sa.Column("updated_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hazards"),
    )
    op.create_index("uq_hazards_open_rule", "hazards", ["site", "rule"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index("ix_hazards_state_deadline", "hazards", ["state", "deadline_ms"])
    op.create_index("ix_hazards_site", "hazards", ["site"])

    op.create_table(
        "hazard_alerts",
        sa.Column("hazard_id", Pk, nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("added_ms", sa.BigInteger(), nullable=False),
        _hazard_fk("hazard_alerts"),
        sa.PrimaryKeyConstraint("hazard_id", "alert_id", name="pk_hazard_alerts"),
    )
    op.create_index("ix_hazard_alerts_alert", "hazard_alerts", ["alert_id"])

    op.create_table(
        "hazard_departments",
        sa.Column("hazard_id", Pk, nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        _hazard_fk("hazard_departments"),
        sa.PrimaryKeyConstraint("hazard_id", "department", name="pk_hazard_departments"),
    )
    op.create_index("ix_hazard_departments_department", "hazard_departments", ["department", "hazard_id"])

    op.create_table(
        "hazard_events",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("hazard_id", Pk, nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attachment_id", sa.BigInteger(), nullable=True),
        sa.Column("departments", sa.JSON(), nullable=False),
        _hazard_fk("hazard_events"),
        sa.PrimaryKeyConstraint("id", name="pk_hazard_events"),
    )
    op.create_index("ix_hazard_events_hazard_id", "hazard_events", ["hazard_id"])

    op.create_table(
        "hazard_steps",
        sa.Column("hazard_id", Pk, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("deadline_ms", sa.BigInteger(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        _hazard_fk("hazard_steps"),
        sa.PrimaryKeyConstraint("hazard_id", "step", name="pk_hazard_steps"),
    )

    op.create_table(
        "hazard_attachments",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("hazard_id", Pk, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _hazard_fk("hazard_attachments"),
        sa.PrimaryKeyConstraint("id", name="pk_hazard_attachments"),
    )
    op.create_index("ix_hazard_attachments_hazard_id", "hazard_attachments", ["hazard_id"])


def downgrade() -> None:
    for table in ("hazard_attachments", "hazard_steps", "hazard_events", "hazard_departments",
                  "hazard_alerts", "hazards"):
        op.drop_table(table)
