"""SQLAlchemy models of the people tables: accounts, sign-in sessions, sign-in failures, the audit
trail (migration ``0002_people``). Tokens gain ``role`` and ``expires_ms`` in ``models.TokenRow``.

Times are epoch milliseconds, as in the rest of the state database.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.state.models import Base, Pk


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sites: Mapped[list[str]] = mapped_column(JSON, default=list)
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, PHC string format
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_ms: Mapped[int] = mapped_column(BigInteger)
    updated_ms: Mapped[int] = mapped_column(BigInteger)


class SessionRow(Base):
    """A sign-in session; the cookie holds a random token of which only the SHA-256 is stored."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_ms: Mapped[int] = mapped_column(BigInteger)
    last_seen_ms: Mapped[int] = mapped_column(BigInteger)
    revoked_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")


class SignInFailureRow(Base):
    """One failed sign-in for a name (known or not): the lock counts these per name."""

    __tablename__ = "signin_failures"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(128))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    ip: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (Index("ix_signin_failures_username_at", "username", "at_ms"),)


class AuditRow(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Pk, primary_key=True, autoincrement=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        Index("ix_audit_at", "at_ms"),
        Index("ix_audit_actor_at", "actor", "at_ms"),
    )
