"""Partition leases and process heartbeats (contract section 12), and the scheduler's exclusive runs.

A lease is a row per partition with an owner, an epoch and an end time on the database's clock.
Every change is one conditional UPDATE, so two processes racing for a partition cannot both win:

- claim: ``owner := me, epoch := epoch + 1, until := now + ttl`` where the row is free or expired;
- renew (the heartbeat): ``until := now + ttl`` where ``owner = me AND epoch = mine``;
- release: ``owner := NULL`` where ``owner = me AND epoch = mine``.

Epochs never repeat for a partition number: rows made anew (``SAFEWATCH_PARTITIONS`` changed)
start at the largest epoch any row had, so after N went 4 → 2 → 4 a journal entry of the first
4-partition era cannot match a new claim of the same partition again.

The scheduler's district-wide jobs (escalation, overdue hazards, retention, ...) run under one
more lease of the same kind, the row ``SCHEDULER`` (partition -1): held, renewed and taken over
exactly like a partition's, so a process paused while holding it loses it after the TTL. (A
session advisory lock would stay with a paused process's open TCP connection indefinitely.)

Fencing: a book write for a partition runs ``holds()`` in its own transaction, which reads the
lease rows ``FOR SHARE``: a claim by another process (an UPDATE of the row) waits for that
transaction to end, and once it has claimed, the old owner's check fails. So a process paused past
its lease cannot write over its successor, whatever its own clock says. A journal entry replayed
at start-up (``at_epoch``) is checked the same way against the epoch it was recorded under.

The other side of that wait: a process paused in the middle of a fenced book write (SIGSTOP keeps
its connection, and its transaction, open) would hold the row and every claim of it for as long
as it stays paused. So a fenced transaction sets ``idle_in_transaction_session_timeout``: paused
past ``FENCED_IDLE_MS``, the server ends its session (the write never commits; resumed, the
process journals it, and the replay finds the epoch moved), and lease changes wait for a row
lock at most ``lock_timeout`` (a quarter of the lease), so the heartbeat thread never hangs on one.

On SQLite there is one process: the rows exist, but every partition is its own and jobs just run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from store.state.models_cluster import LeaseRow, ProcessRow
from store.state.session import SessionSource

log = logging.getLogger(__name__)
PARTITIONS_LOCK = 0x5AFE_1EA5  # pg advisory lock key: "safewatch lease rows"
SCHEDULER = -1  # the lease row of the scheduler role's district-wide jobs (not a partition)
FENCED_IDLE_MS = 5000  # a fenced transaction whose process stopped talking this long is ended by the server
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock_timeout
_PG_NOW_MS = text("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")


class PartitionsMismatch(ValueError):
    """Live processes use another ``SAFEWATCH_PARTITIONS``: the sites would be split two ways."""


@dataclass(frozen=True, slots=True)
class Lease:
    partition: int
    owner: str | None
    epoch: int
    lease_until_ms: int


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    id: str
    host: str
    pid: int
    roles: tuple[str, ...]
    partitions: int
    started_ms: int
    heartbeat_ms: int


def db_now_ms(s: Session) -> int:
    """The database's clock (PostgreSQL), or this machine's (SQLite, one process)."""
    if s.get_bind().dialect.name == "postgresql":
        return int(s.execute(_PG_NOW_MS).scalar_one())
    return time.time_ns() // 1_000_000


def holds(s: Session, owner: str, claims: Mapping[int, int]) -> set[int]:
    """The partitions of ``claims`` (partition → epoch) that ``owner`` still holds under that epoch.

    Runs in the caller's transaction and locks the rows ``FOR SHARE`` (PostgreSQL) until it ends:
    the fence of a book write.
    """
    if not claims:
        return set()
    q = select(LeaseRow.partition, LeaseRow.epoch).where(
        LeaseRow.partition.in_(list(claims)), LeaseRow.owner == owner)
    if s.get_bind().dialect.name == "postgresql":
        _end_if_paused(s)
        q = q.with_for_update(read=True)
    return {int(p) for p, epoch in s.execute(q) if claims.get(int(p)) == int(epoch)}


def at_epoch(s: Session, partition: int, epoch: int, partitions: int) -> bool:
    """Whether the lease row of ``partition`` (of ``partitions``) still has ``epoch``, whoever owns it.

    Every claim raises the epoch, so an unchanged one means nobody took the partition over since.
    Runs in the caller's transaction with the row locked ``FOR SHARE`` (PostgreSQL) until it ends, so
    a claim racing it waits for the write and then sees it. SQLite has one process: always True.
    """
    if s.get_bind().dialect.name != "postgresql":
        return True
    _end_if_paused(s)
    q = (select(LeaseRow.epoch).where(LeaseRow.partition == partition, LeaseRow.partitions == partitions)
         .with_for_update(read=True))
    return s.execute(q).scalar() == epoch


def _end_if_paused(s: Session) -> None:
    s.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = {FENCED_IDLE_MS}"))


def _lock_timeout(s: Session, ttl_ms: int) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text(f"SET LOCAL lock_timeout = {max(100, int(ttl_ms) // 4)}"))


def _locked(err: OperationalError) -> bool:
    return getattr(err.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


class LeaseStore(SessionSource):
    """The lease and process tables; every method is one short transaction."""

    # -- processes ------------------------------------------------------------------------------

    def register_process(self, pid: int, host: str, process_id: str, roles: Collection[str],
                         partitions: int) -> None:
        with self._write() as s:
            now = db_now_ms(s)
            row = s.get(ProcessRow, process_id)
            if row is None:
                s.add(ProcessRow(id=process_id, host=host, pid=pid, roles=list(roles), partitions=partitions,
                                 started_ms=now, heartbeat_ms=now))
            else:
                row.heartbeat_ms = now

    def beat(self, process_id: str) -> int:
        """Refreshes the process's heartbeat (re-registering a row someone removed); returns db now."""
        with self._write() as s:
            now = db_now_ms(s)
            s.execute(update(ProcessRow).where(ProcessRow.id == process_id).values(heartbeat_ms=now))
            return now

    def processes(self) -> list[ProcessInfo]:
        with self._read() as s:
            return [ProcessInfo(r.id, r.host, r.pid, tuple(r.roles or ()), r.partitions, r.started_ms,
                                r.heartbeat_ms) for r in s.scalars(select(ProcessRow).order_by(ProcessRow.id))]

    def live_processes(self, ttl_ms: int, role: str | None = None) -> list[ProcessInfo]:
        """Processes whose heartbeat is younger than ``ttl_ms`` (with ``role``, if given), by id."""
        with self._read() as s:
            now = db_now_ms(s)
        return [p for p in self.processes()
                if now - p.heartbeat_ms < ttl_ms and (role is None or role in p.roles)]

    def remove_process(self, process_id: str) -> None:
        with self._write() as s:
            s.execute(delete(ProcessRow).where(ProcessRow.id == process_id))

    def purge_processes(self, older_than_ms: int) -> int:
        """Drops rows of processes silent for ``older_than_ms`` (killed ones); returns how many."""
        with self._write() as s:
            cutoff = db_now_ms(s) - older_than_ms
            gone = s.execute(delete(ProcessRow).where(ProcessRow.heartbeat_ms < cutoff).returning(ProcessRow.id))
            return len(gone.all())

    # -- leases ---------------------------------------------------------------------------------

    def ensure_partitions(self, n: int, ttl_ms: int) -> None:
        """Makes rows 0..n-1 exist for ``n`` partitions, and the ``SCHEDULER`` row.

        Rows of another N are replaced when no live process uses it; otherwise raises
        PartitionsMismatch naming SAFEWATCH_PARTITIONS and both values. New rows start at the
        largest epoch of any row, so no epoch is ever handed out twice for a partition number.
        """
        with self._write() as s:
            if s.bind is not None and s.bind.dialect.name == "postgresql":
                # Processes starting together would all insert the missing rows (a unique
                # violation for all but one): one at a time; the rest then find them there.
                s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTITIONS_LOCK})
            now = db_now_ms(s)
            others = {int(r.partitions) for r in s.scalars(
                select(LeaseRow).where(LeaseRow.partitions != n, LeaseRow.partition >= 0))}
            live = s.scalars(select(ProcessRow.partitions).where(ProcessRow.heartbeat_ms > now - ttl_ms,
                                                                 ProcessRow.partitions != n)).all()
            if live:
                raise PartitionsMismatch(
                    f"SAFEWATCH_PARTITIONS={n}: live processes on this state database use {live[0]}; "
                    "every process of a district needs the same value")
            floor = int(s.scalar(select(func.max(LeaseRow.epoch))) or 0)
            if others:
                log.warning("leases: replacing the rows of %s partitions with %d", sorted(others), n)
                s.execute(delete(LeaseRow).where(LeaseRow.partitions != n, LeaseRow.partition >= 0))
            have = set(s.scalars(select(LeaseRow.partition)))
            s.add_all(LeaseRow(partition=k, partitions=0 if k == SCHEDULER else n, owner=None, epoch=floor,
                               lease_until_ms=0)
                      for k in (SCHEDULER, *range(n)) if k not in have)

    def db_now(self) -> int:
        """The database's clock in epoch ms (lease times are on it)."""
        with self._read() as s:
            return db_now_ms(s)

    def leases(self) -> list[Lease]:
        """The partitions' leases, in order (the ``SCHEDULER`` row left out)."""
        with self._read() as s:
            return [Lease(r.partition, r.owner, r.epoch, r.lease_until_ms)
                    for r in s.scalars(select(LeaseRow).where(LeaseRow.partition >= 0).order_by(LeaseRow.partition))]

    def lease_table(self) -> tuple[int, list[Lease]]:
        """(database now, every lease row, the ``SCHEDULER`` row included) read at one moment."""
        with self._read() as s:
            now = db_now_ms(s)
            return now, [Lease(r.partition, r.owner, r.epoch, r.lease_until_ms)
                         for r in s.scalars(select(LeaseRow).order_by(LeaseRow.partition))]

    def claimable(self) -> list[int]:
        """Partitions free or expired now, in order."""
        with self._read() as s:
            now = db_now_ms(s)
            q = select(LeaseRow.partition).where(
                LeaseRow.partition >= 0, (LeaseRow.owner.is_(None)) | (LeaseRow.lease_until_ms <= now))
            return sorted(int(p) for p in s.scalars(q))

    def claim(self, partition: int, owner: str, ttl_ms: int) -> int | None:
        """Takes the partition (or ``SCHEDULER``) if it is free or expired; returns the new epoch, or
        None (held, or its row locked by a fenced write that has not finished: next time, then)."""
        try:
            with self._write() as s:
                _lock_timeout(s, ttl_ms)
                now = db_now_ms(s)
                q = (update(LeaseRow)
                     .where(LeaseRow.partition == partition,
                            (LeaseRow.owner.is_(None)) | (LeaseRow.lease_until_ms <= now))
                     .values(owner=owner, epoch=LeaseRow.epoch + 1, lease_until_ms=now + ttl_ms)
                     .returning(LeaseRow.epoch))
                epoch = s.execute(q).scalar()
                return None if epoch is None else int(epoch)
        except OperationalError as err:
            if not _locked(err):
                raise
            log.warning("lease %d: its row is locked by an unfinished book write (a paused process?); "
                        "not claimed this time", partition)
            return None

    def renew(self, owner: str, claims: Mapping[int, int], ttl_ms: int) -> set[int]:
        """Extends the leases of ``claims`` (partition → epoch) still held; returns those renewed."""
        if not claims:
            return set()
        with self._write() as s:
            _lock_timeout(s, ttl_ms)  # a paused process's fenced write: fail this tick, not hang it
            now = db_now_ms(s)
            q = (update(LeaseRow)
                 .where(LeaseRow.partition.in_(list(claims)), LeaseRow.owner == owner)
                 .values(lease_until_ms=now + ttl_ms)
                 .returning(LeaseRow.partition, LeaseRow.epoch))
            rows = s.execute(q).all()
            # A row renewed under another epoch is impossible for one owner id; skip it regardless.
            return {int(p) for p, e in rows if claims.get(int(p)) == int(e)}

    def release(self, partition: int, owner: str, epoch: int) -> bool:
        """Gives the partition up at once (the next claimer need not wait for the TTL)."""
        with self._write() as s:
            now = db_now_ms(s)
            q = (update(LeaseRow)
                 .where(LeaseRow.partition == partition, LeaseRow.owner == owner, LeaseRow.epoch == epoch)
                 .values(owner=None, lease_until_ms=now)
                 .returning(LeaseRow.partition))
            return s.execute(q).first() is not None

    def release_any(self, partition: int) -> None:
        """Frees the partition whoever holds it: for the single SQLite process, whose predecessor died."""
        with self._write() as s:
            s.execute(update(LeaseRow).where(LeaseRow.partition == partition).values(owner=None, lease_until_ms=0))

    def holds(self, owner: str, claims: Mapping[int, int]) -> set[int]:
        """``holds`` in a transaction of its own (before reconnecting a partition's session)."""
        with self._read() as s:
            return holds(s, owner, claims)

    def lease_count(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(LeaseRow)) or 0)
