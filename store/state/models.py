"""SQLAlchemy 2 models of the state database: the alert book, access, silences, outbox.

Times are epoch milliseconds in BIGINT columns: exact, sortable and the same on SQLite
(which has no time zone type) and PostgreSQL. The Alembic migrations in ``migrations/``
create the same schema; ``tests/test_state.py`` checks that the two agree.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Pk = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    device: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(64))
    street: Mapped[str] = mapped_column(String(64), default="")
    severity: Mapped[int] = mapped_column(SmallInteger)
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    started_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)
    resolved_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    closed_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    flapping: Mapped[bool] = mapped_column(Boolean, default=False)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_ms: Mapped[list[int]] = mapped_column(JSON, default=list)
    reached_ms: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    escalations_done: Mapped[list[int]] = mapped_column(JSON, default=list)
    acknowledged_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        # The contract's "one alert at a time per (rule, site, device, metric)", enforced by
        # the database so that two processes sharing PostgreSQL cannot both open one.
        Index(
            "uq_alerts_live_key", "rule", "site", "device", "metric", unique=True,
            sqlite_where=text("state != 'closed'"), postgresql_where=text("state != 'closed'"),
        ),
        Index("ix_alerts_site_state", "site", "state"),
        Index("ix_alerts_state", "state"),
    )


class AlertDepartmentRow(Base):
    """Which departments an alert is routed to, for department-scoped queries (the JSON list keeps order)."""

    __tablename__ = "alert_departments"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    department: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_alert_departments_department", "department", "alert_id"),)


class EventRow(Base):
    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(24))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    severity: Mapped[int] = mapped_column(SmallInteger)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    departments: Mapped[list[str]] = mapped_column(JSON, default=list)


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text, default="")
    min_severity: Mapped[int] = mapped_column(SmallInteger)
    families: Mapped[list[str]] = mapped_column(JSON, default=list)
    streets: Mapped[list[str]] = mapped_column(JSON, default=list)
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    # Made by the admin: an mqtt subscription may then publish anywhere under {district}/alerts/,
    # a department's only under its own {district}/alerts/{department}/ (contract section 6).
    admin_scope: Mapped[bool] = mapped_column(Boolean, default=False)


class TokenRow(Base):
    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    department: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Added by migration 0002 (people): "viewer" or "operator"; None = never expires.
    role: Mapped[str] = mapped_column(String(16), default="operator", server_default="operator")
    expires_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class SilenceRow(Base):
    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str | None] = mapped_column(String(64), nullable=True)
    until_ms: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_silences_site_until", "site", "until_ms"),)


class OutboxRow(Base):
    """One notification: an event (of an alert or a hazard) for one department through one target.

    ``subject``/``subject_id`` name what the event is about; ``event_key`` is the event id as the
    body carries it (``"123"`` for alert events, ``"hazard-45"`` for hazard events). ``site`` and
    ``metric`` are columns so that the silence stage never parses the body.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(16), default="alert")  # alert | hazard
    subject_id: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(64))
    # Alert rows only (hazard events live in their own table): deleting the event deletes its rows.
    event_id: Mapped[int | None] = mapped_column(ForeignKey("alert_events.id", ondelete="CASCADE"),
                                                 nullable=True)
    alert_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # No foreign key: deleting a subscription must not lose the record of what was sent;
    # the worker drops pending rows whose subscription is gone.
    subscription_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    channel: Mapped[str] = mapped_column(String(16))
    target_kind: Mapped[str] = mapped_column(String(16))  # subscription | topic
    target: Mapped[str] = mapped_column(String(512))  # the FIFO key: sub:<id> | topic:<topic>
    # target_kind topic: the MQTT topic (the key above is only compared, never parsed).
    topic: Mapped[str | None] = mapped_column(String(512), nullable=True)
    department: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        # Dedup: an event reaches one target once, however often it is planned.
        UniqueConstraint("event_key", "target", name="uq_outbox_event_key_target"),
        Index("ix_outbox_status_target", "status", "target", "id"),
        Index("ix_outbox_status_due", "status", "next_attempt_ms"),
    )


def row_dict(row: Any) -> dict[str, Any]:
    """Column values of an ORM row (for tests and debugging)."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


# The second round's tables live in modules of their own; importing them here puts them on
# ``Base.metadata``, which the migrations are checked against.
from store.state import models_cluster, models_people, models_supervision  # noqa: E402, F401
