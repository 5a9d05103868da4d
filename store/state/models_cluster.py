"""SQLAlchemy models of the cluster tables (migration ``0005_cluster``): partition leases and processes.

Times are epoch milliseconds of the *database's* clock (PostgreSQL ``clock_timestamp()``), so that
processes on machines whose clocks disagree still agree on when a lease ends.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.state.models import Base


class LeaseRow(Base):
    """One partition of the district's sites: who holds it, under which epoch, until when.

    ``epoch`` grows by one at every claim; a book write for the partition checks it (fencing).
    ``partitions`` is the N the row belongs to (site k = crc32(id) mod N), so that a restart with
    another ``SAFEWATCH_PARTITIONS`` is noticed.
    """

    __tablename__ = "leases"

    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    partitions: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str | None] = mapped_column(String(128), nullable=True)
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_until_ms: Mapped[int] = mapped_column(BigInteger, default=0)


class ProcessRow(Base):
    """A ``serve`` process taking part, with its roles and its last heartbeat."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    partitions: Mapped[int] = mapped_column(Integer)
    started_ms: Mapped[int] = mapped_column(BigInteger)
    heartbeat_ms: Mapped[int] = mapped_column(BigInteger)
