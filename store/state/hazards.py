"""Hazards (contract section 10): the supervision side's unit of work and its reads.

``HazardTx`` is one write transaction (listing, a move, an overdue step): the hazard change, its
event and the notifications planned for it commit together. Rows read through it are locked on
PostgreSQL (``FOR UPDATE``); SQLite already holds its write lock (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from domain.alerts import AlertState
from domain.clock import now_ms
from domain.hazards import Attachment, Hazard, HazardEvent, HazardEventType
from store.state.convert import int_id
from store.state.hazard_convert import attachment_of, fill_hazard, hazard_event_of, hazard_of
from store.state.hazard_reads import HazardReads
from store.state.models import AlertRow
from store.state.models_supervision import (
    AttachmentRow,
    HazardAlertRow,
    HazardDepartmentRow,
    HazardEventRow,
    HazardRow,
    HazardStepRow,
)
from store.state.records import dt_to_ms

LISTING_LOCK = 0x5AFE_4A2D  # pg advisory lock key: "list hazards from alerts", one process at a time


class HazardTx:
    def __init__(self, session: Session) -> None:
        self._s = session
        self._rows: dict[int, HazardRow] = {}

    @property
    def session(self) -> Session:
        """The transaction's session, for planning notifications in the same commit."""
        return self._s

    def lock_listing(self) -> None:
        """Serialises listing across processes on PostgreSQL (SQLite's write lock already does)."""
        if self._s.get_bind().dialect.name == "postgresql":
            self._s.execute(text(f"SELECT pg_advisory_xact_lock({LISTING_LOCK})"))

    def get(self, hazard_id: str) -> Hazard | None:
        pk = int_id(hazard_id)
        if pk is None:
            return None
        row = self._s.scalars(select(HazardRow).where(HazardRow.id == pk).with_for_update()).first()
        return self._keep(row)

    def open_for_rule(self, site: str, rule: str) -> Hazard | None:
        """The unclosed hazard listed from alerts of ``rule`` at ``site`` (at most one)."""
        row = self._s.scalars(select(HazardRow).where(
            HazardRow.site == site, HazardRow.rule == rule, HazardRow.state != "closed").with_for_update()
        ).first()
        return self._keep(row)

    def open_of_alert(self, alert_id: str) -> Hazard | None:
        """The unclosed hazard the alert is on, if any."""
        pk = int_id(alert_id)
        if pk is None:
            return None
        row = self._s.scalars(select(HazardRow).join(HazardAlertRow, HazardAlertRow.hazard_id == HazardRow.id)
                              .where(HazardAlertRow.alert_id == pk, HazardRow.state != "closed")
                              .with_for_update()).first()
        return self._keep(row)

    def ever_listed(self, alert_id: str) -> bool:
        pk = int_id(alert_id)
        return pk is not None and self._s.scalar(
            select(HazardAlertRow.hazard_id).where(HazardAlertRow.alert_id == pk).limit(1)) is not None

    def _keep(self, row: HazardRow | None) -> Hazard | None:
        if row is None:
            return None
        self._rows[row.id] = row
        return self._hazard(row)

    def _hazard(self, row: HazardRow) -> Hazard:
        ids = self._s.scalars(select(HazardAlertRow.alert_id).where(HazardAlertRow.hazard_id == row.id))
        return hazard_of(row, ids)

    def insert(self, h: Hazard, created_by: str) -> Hazard:
        """Adds a new hazard (``h.id`` is ignored) with its departments; returns it with its id."""
        row = HazardRow(site=h.site, family=h.family, street=h.street, sector=h.sector, source=h.source.value,
                        rule=h.rule, listed_ms=dt_to_ms(h.listed_at), created_by=created_by)
        fill_hazard(row, h, h.listed_at)
        self._s.add(row)
        self._s.flush()
        self._rows[row.id] = row
        self._s.add_all(HazardDepartmentRow(hazard_id=row.id, department=d) for d in dict.fromkeys(h.departments))
        self._s.flush()
        return self._hazard(row)

    def update(self, h: Hazard) -> Hazard:
        """Writes back a hazard read through this transaction (departments only ever grow)."""
        row = self._rows.get(int(h.id))
        if row is None:
            raise KeyError(f"hazard {h.id} was not read in this transaction")
        added = [d for d in dict.fromkeys(h.departments) if d not in (row.departments or ())]
        fill_hazard(row, h, h.updated_at or h.listed_at)
        self._s.add_all(HazardDepartmentRow(hazard_id=row.id, department=d) for d in added)
        self._s.flush()
        return self._hazard(row)

    def add_alert(self, hazard_id: str, alert_id: str, at_ms: int) -> None:
        self._s.add(HazardAlertRow(hazard_id=int(hazard_id), alert_id=int(alert_id), added_ms=at_ms))
        self._s.flush()

    def alert_states(self, hazard_id: str) -> dict[str, AlertState]:
        """The states of the hazard's alerts, locked so none reopens while the hazard closes."""
        q = (select(AlertRow.id, AlertRow.state).join(HazardAlertRow, HazardAlertRow.alert_id == AlertRow.id)
             .where(HazardAlertRow.hazard_id == int(hazard_id)).with_for_update(of=AlertRow))
        return {str(pk): AlertState(st) for pk, st in self._s.execute(q)}

    def add_event(self, hazard_id: str, type: HazardEventType, at_ms: int, by: str, *, note: str | None = None,
                  attachment: str | None = None, departments: Iterable[str] = ()) -> HazardEvent:
        row = HazardEventRow(hazard_id=int(hazard_id), type=type.value, at_ms=at_ms, actor=by, note=note,
                             attachment_id=None if attachment is None else int(attachment),
                             departments=list(departments))
        self._s.add(row)
        self._s.flush()
        return hazard_event_of(row)

    def with_events(self, h: Hazard) -> Hazard:
        q = select(HazardEventRow).where(HazardEventRow.hazard_id == int(h.id)).order_by(HazardEventRow.id)
        return replace(h, events=tuple(hazard_event_of(r) for r in self._s.scalars(q)))

    def steps_done(self, hazard_id: str) -> set[int]:
        q = select(HazardStepRow.step).where(HazardStepRow.hazard_id == int(hazard_id))
        return set(self._s.scalars(q))

    def take_step(self, hazard_id: str, step: int, deadline_ms: int, at_ms: int) -> None:
        """Records an overdue step; a second record of it fails the transaction (IntegrityError)."""
        self._s.add(HazardStepRow(hazard_id=int(hazard_id), step=step, deadline_ms=deadline_ms, at_ms=at_ms))
        self._s.flush()

    def add_attachment(self, hazard_id: str, name: str, type: str, data: bytes, sha256: str,
                       by: str) -> Attachment:
        row = AttachmentRow(hazard_id=int(hazard_id), name=name, type=type, size=len(data), sha256=sha256,
                            data=data, created_ms=now_ms(), created_by=by)
        self._s.add(row)
        self._s.flush()
        return attachment_of(row)


class HazardStore(HazardReads):
    """The StateStore mixin: ``hazard_transaction()`` for writes, the reads of ``HazardReads``."""

    @contextmanager
    def hazard_transaction(self) -> Iterator[HazardTx]:
        with self._write() as s:
            yield HazardTx(s)
