"""Read side of the hazards: the API's lists, reports and credit inputs, and the jobs' scans."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from domain.alerts import Alert, AlertState
from domain.hazards import NOTIFIED, Attachment, Hazard, HazardEvent, HazardEventType, HazardState
from domain.severity import Severity
from store.state.convert import alert_of, int_id
from store.state.hazard_convert import attachment_of, hazard_event_of, hazard_of
from store.state.models import AlertRow
from store.state.models_supervision import (
    AttachmentRow,
    HazardAlertRow,
    HazardDepartmentRow,
    HazardEventRow,
    HazardRow,
    HazardStepRow,
)
from store.state.session import SessionSource

MAX_LIMIT = 1000
LIVE_ALERTS = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value, AlertState.RESOLVED.value)


@dataclass(frozen=True, slots=True)
class HazardFilter:
    """What ``list_hazards`` keeps; ``department`` / ``sites`` scope it to a caller."""

    state: HazardState | None = None
    site: str | None = None
    street: str | None = None
    sector: str | None = None
    level: str | None = None
    source: str | None = None
    overdue: bool | None = None
    department: str | None = None
    sites: Collection[str] | None = None


@dataclass(frozen=True, slots=True)
class AlertTally:
    """One alert as the credit score counts it: its site, highest severity and start."""

    site: str
    severity: Severity
    started_ms: int


def _alert_ids(s: Session, ids: Collection[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = defaultdict(list)
    if ids:
        for hid, aid in s.execute(select(HazardAlertRow.hazard_id, HazardAlertRow.alert_id)
                                  .where(HazardAlertRow.hazard_id.in_(ids))):
            out[hid].append(aid)
    return out


class HazardReads(SessionSource):
    def list_hazards(self, f: HazardFilter = HazardFilter(), *, limit: int = 100,
                     before: str | None = None) -> list[Hazard]:
        """Hazards newest first, without their events. Raises ValueError naming ``before``."""
        q = select(HazardRow)
        for column, value in ((HazardRow.state, None if f.state is None else f.state.value),
                              (HazardRow.site, f.site), (HazardRow.street, f.street),
                              (HazardRow.sector, f.sector), (HazardRow.level, f.level),
                              (HazardRow.source, f.source), (HazardRow.overdue, f.overdue)):
            if value is not None:
                q = q.where(column == value)
        if f.department is not None:
            q = q.where(HazardRow.id.in_(select(HazardDepartmentRow.hazard_id)
                                         .where(HazardDepartmentRow.department == f.department)))
        if f.sites is not None:
            q = q.where(HazardRow.site.in_(list(f.sites)))
        if before is not None:
            pk = int_id(before)
            if pk is None:
                raise ValueError(f"before={before!r}: expected a hazard id")
            q = q.where(HazardRow.id < pk)
        q = q.order_by(HazardRow.id.desc()).limit(max(1, min(int(limit), MAX_LIMIT)))
        with self._read() as s:
            rows = s.scalars(q).all()
            alerts = _alert_ids(s, [r.id for r in rows])
            return [hazard_of(r, alerts[r.id]) for r in rows]

    def get_hazard(self, hazard_id: str, with_events: bool = True) -> Hazard | None:
        pk = int_id(hazard_id)
        if pk is None:
            return None
        with self._read() as s:
            row = s.get(HazardRow, pk)
            if row is None:
                return None
            events: Sequence[HazardEventRow] = ()
            if with_events:
                events = s.scalars(select(HazardEventRow).where(HazardEventRow.hazard_id == pk)
                                   .order_by(HazardEventRow.id)).all()
            return hazard_of(row, _alert_ids(s, [pk])[pk], events)

    def get_attachment(self, hazard_id: str, attachment_id: str) -> Attachment | None:
        """The attachment with its bytes, or None (also when it belongs to another hazard)."""
        hid, aid = int_id(hazard_id), int_id(attachment_id)
        if hid is None or aid is None:
            return None
        with self._read() as s:
            row = s.get(AttachmentRow, aid)
            return None if row is None or row.hazard_id != hid else attachment_of(row, with_data=True)

    def open_hazard_of_alert(self, alert_id: str) -> Hazard | None:
        """The unclosed hazard an alert is on (``POST /alerts/{id}/close`` answers 409 then)."""
        pk = int_id(alert_id)
        if pk is None:
            return None
        with self._read() as s:
            row = s.scalars(select(HazardRow).join(HazardAlertRow, HazardAlertRow.hazard_id == HazardRow.id)
                            .where(HazardAlertRow.alert_id == pk, HazardRow.state != "closed")).first()
            return None if row is None else hazard_of(row, _alert_ids(s, [row.id])[row.id])

    def unlisted_alerts(self, severity_at_least: Severity, limit: int = MAX_LIMIT) -> list[Alert]:
        """Alerts still on the books at or above the listing severity that no hazard holds: what a
        crash between an alert's commit and its listing leaves behind (the catch-up sweep)."""
        q = (select(AlertRow).where(AlertRow.state.in_(LIVE_ALERTS), AlertRow.severity >= int(severity_at_least),
                                    ~AlertRow.id.in_(select(HazardAlertRow.alert_id)))
             .order_by(AlertRow.id).limit(limit))
        with self._read() as s:
            return [alert_of(r) for r in s.scalars(q)]

    def past_deadline(self, at_ms: int) -> list[Hazard]:
        """Unclosed hazards whose deadline is before ``at_ms``, oldest deadline first."""
        q = (select(HazardRow).where(HazardRow.state != "closed", HazardRow.deadline_ms < at_ms)
             .order_by(HazardRow.deadline_ms, HazardRow.id))
        with self._read() as s:
            return [hazard_of(r) for r in s.scalars(q)]

    def hazards_touching(self, start_ms: int, end_ms: int) -> list[Hazard]:
        """Hazards on the books at some time in [start, end): listed before the end and not closed
        before the start, oldest first (reports and credit)."""
        q = (select(HazardRow).where(HazardRow.listed_ms < end_ms,
                                     or_(HazardRow.closed_ms.is_(None), HazardRow.closed_ms >= start_ms))
             .order_by(HazardRow.id))
        with self._read() as s:
            return [hazard_of(r) for r in s.scalars(q)]

    def alerts_started(self, start_ms: int, end_ms: int) -> list[AlertTally]:
        """Alerts started in [start, end) with the highest severity they reached (credit)."""
        q = select(AlertRow.site, AlertRow.severity, AlertRow.reached_ms, AlertRow.started_ms).where(
            AlertRow.started_ms >= start_ms, AlertRow.started_ms < end_ms)
        out = []
        with self._read() as s:
            for site, sev, reached, started in s.execute(q):
                top = max([int(sev), *(int(k) for k in (reached or {}))])
                out.append(AlertTally(site, Severity(top), int(started)))
        return out

    def rejections(self, start_ms: int, end_ms: int) -> dict[str, int]:
        """Site → reviews rejected in [start, end) (credit)."""
        q = (select(HazardRow.site, HazardEventRow.id).join(HazardRow, HazardRow.id == HazardEventRow.hazard_id)
             .where(HazardEventRow.type == HazardEventType.REJECTED.value,
                    HazardEventRow.at_ms >= start_ms, HazardEventRow.at_ms < end_ms))
        out: dict[str, int] = defaultdict(int)
        with self._read() as s:
            for site, _ in s.execute(q):
                out[site] += 1
        return dict(out)

    def last_hazard_event_id(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.max(HazardEventRow.id))) or 0)

    def hazard_events_since(self, event_id: int, limit: int = MAX_LIMIT) -> list[tuple[HazardEvent, Hazard]]:
        """Notified hazard events with id > ``event_id`` (oldest first), each with its hazard as it is
        now, events included: what another process's SSE stream relays."""
        q = (select(HazardEventRow).where(HazardEventRow.id > int(event_id),
                                          HazardEventRow.type.in_([t.value for t in NOTIFIED]))
             .order_by(HazardEventRow.id).limit(max(1, min(int(limit), MAX_LIMIT))))
        with self._read() as s:
            rows = s.scalars(q).all()
            ids = {r.hazard_id for r in rows}
            if not ids:
                return []
            events: dict[int, list[HazardEventRow]] = defaultdict(list)
            for ev in s.scalars(select(HazardEventRow).where(HazardEventRow.hazard_id.in_(ids))
                                .order_by(HazardEventRow.id)):
                events[ev.hazard_id].append(ev)
            alerts = _alert_ids(s, ids)
            hazards = {h.id: hazard_of(h, alerts[h.id], events[h.id])
                       for h in s.scalars(select(HazardRow).where(HazardRow.id.in_(ids)))}
            return [(hazard_event_of(r), hazards[r.hazard_id]) for r in rows]

    def steps_taken(self, hazard_ids: Collection[str]) -> dict[str, set[int]]:
        """Hazard id → the overdue steps already taken (one query for the job's scan)."""
        ids = [pk for h in hazard_ids if (pk := int_id(h)) is not None]
        out: dict[str, set[int]] = defaultdict(set)
        if ids:
            with self._read() as s:
                for hid, step in s.execute(select(HazardStepRow.hazard_id, HazardStepRow.step)
                                           .where(HazardStepRow.hazard_id.in_(ids))):
                    out[str(hid)].add(int(step))
        return out
