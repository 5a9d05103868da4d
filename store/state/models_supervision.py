"""SQLAlchemy models of the supervision tables (migration ``0003_supervision``).

Times are epoch milliseconds, as in the alert book. Attachments are kept in the database
(``LargeBinary``) so that every process sharing it can serve them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.state.models import Base, Pk

OPEN = text("state != 'closed'")


class HazardRow(Base):
    __tablename__ = "hazards"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    street: Mapped[str] = mapped_column(String(64))
    sector: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    listed_ms: Mapped[int] = mapped_column(BigInteger)
    deadline_ms: Mapped[int] = mapped_column(BigInteger)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        # One unclosed hazard per (site, rule) for hazards listed from alerts: a second alert of
        # the rule joins it, also when two processes list at once (rule NULL is never equal).
        Index("uq_hazards_open_rule", "site", "rule", unique=True,
              sqlite_where=OPEN, postgresql_where=OPEN),
        Index("ix_hazards_state_deadline", "state", "deadline_ms"),
        Index("ix_hazards_site", "site"),
    )


class HazardAlertRow(Base):
    """An alert on a hazard: the primary key makes listing from a sweep idempotent."""

    __tablename__ = "hazard_alerts"

    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    added_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_hazard_alerts_alert", "alert_id"),)


class HazardDepartmentRow(Base):
    """Which departments see a hazard, for department-scoped queries (the JSON list keeps order)."""

    __tablename__ = "hazard_departments"

    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_hazard_departments_department", "department", "hazard_id"),)


class HazardEventRow(Base):
    __tablename__ = "hazard_events"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    attachment_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)


class HazardStepRow(Base):
    """An overdue step taken: the primary key is what makes each step happen once."""

    __tablename__ = "hazard_steps"

    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    deadline_ms: Mapped[int] = mapped_column(BigInteger)  # the deadline the step was measured from
    at_ms: Mapped[int] = mapped_column(BigInteger)


class AttachmentRow(Base):
    __tablename__ = "hazard_attachments"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(64))
