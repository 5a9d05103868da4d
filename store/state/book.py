"""The alert book: the lifecycle's unit of work (``BookTx``) and the API's reads (``BookReads``)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain.alerts import Alert, AlertEvent, AlertKey, AlertState, EventType
from domain.clock import now_ms
from domain.severity import Severity
from store.state.convert import alert_of, entry_of, event_of, int_id, subscription_of
from store.state.leases import at_epoch
from store.state.leases import holds as lease_holds
from store.state.models import AlertDepartmentRow, AlertRow, EventRow, OutboxRow, SubscriptionRow
from store.state.records import Entry, NewOutbox, Subscription, dt_to_ms
from store.state.session import SessionSource

MAX_LIMIT = 1000
LIVE_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value, AlertState.RESOLVED.value)
FIRING_STATES = (AlertState.OPEN.value, AlertState.ACKNOWLEDGED.value)


class BookTx:
    """One write transaction over the book, used by the lifecycle and escalation.

    Rows read here are locked on PostgreSQL (``SELECT ... FOR UPDATE``), so two processes
    sharing the database serialise on an alert; SQLite already holds its write lock.
    Everything done through one BookTx commits or rolls back together: alert, event and
    outbox rows, which is what makes delivery at-least-once.
    """

    def __init__(self, session: Session) -> None:
        self._s = session
        self._rows: dict[int, AlertRow] = {}
        self._subs: dict[str, list[Subscription]] = {}

    def holds(self, owner: str, claims: Mapping[int, int]) -> set[int]:
        """The fence (contract section 12): the partitions of ``claims`` (partition → epoch) whose
        lease ``owner`` still holds, their rows locked until this transaction ends."""
        return lease_holds(self._s, owner, claims)

    def lease_at(self, partition: int, epoch: int, partitions: int) -> bool:
        """The journal replay's fence: nobody claimed ``partition`` (of ``partitions``) since
        ``epoch``; its row stays locked until this transaction ends. True on SQLite (one process)."""
        return at_epoch(self._s, partition, epoch, partitions)

    def live(self, key: AlertKey) -> Entry | None:
        """The key's alert that is not closed (at most one, by the unique index)."""
        row = self._s.scalars(
            select(AlertRow).where(
                AlertRow.rule == key.rule, AlertRow.site == key.site, AlertRow.device == key.device,
                AlertRow.metric == key.metric, AlertRow.state != AlertState.CLOSED.value,
            ).with_for_update()
        ).first()
        return self._keep(row)

    def get(self, alert_id: str) -> Entry | None:
        pk = int_id(alert_id)
        if pk is None:
            return None
        row = self._s.scalars(select(AlertRow).where(AlertRow.id == pk).with_for_update()).first()
        return self._keep(row)

    def _keep(self, row: AlertRow | None) -> Entry | None:
        if row is None:
            return None
        self._rows[row.id] = row
        return entry_of(row)

    def insert(self, entry: Entry) -> Entry:
        """Adds a new alert (``entry.alert.id`` is ignored) and returns it with its id."""
        row = AlertRow()
        _fill(row, entry)
        self._s.add(row)
        self._s.flush()
        self._rows[row.id] = row
        self._add_departments(row.id, entry.alert.departments)
        return entry_of(row)

    def update(self, entry: Entry) -> Entry:
        """Writes back an alert read through this transaction."""
        pk = int(entry.alert.id)
        row = self._rows.get(pk)
        if row is None:
            raise KeyError(f"alert {entry.alert.id} was not read in this transaction")
        added = [d for d in entry.alert.departments if d not in (row.departments or ())]
        _fill(row, entry)
        self._s.flush()
        self._add_departments(pk, added)
        return entry_of(row)

    def _add_departments(self, pk: int, departments: Iterable[str]) -> None:
        # Only ever called with departments not yet on the alert (its JSON list mirrors the rows).
        self._s.add_all(AlertDepartmentRow(alert_id=pk, department=dep) for dep in dict.fromkeys(departments))

    def add_event(self, alert_id: str, type: EventType, at_ms: int, severity: Severity, *,
                  value: float | None = None, by: str | None = None, note: str | None = None,
                  departments: Sequence[str] = ()) -> AlertEvent:
        row = EventRow(alert_id=int(alert_id), type=type.value, at_ms=at_ms, severity=int(severity),
                       value=value, actor=by, note=note, departments=list(departments))
        self._s.add(row)
        self._s.flush()
        return event_of(row)

    def events_of(self, alert_id: str, tail: int | None = None) -> tuple[AlertEvent, ...]:
        """The alert's events, oldest first; with ``tail``, only the last ``tail`` of them (read
        newest first through the alert_id index, so a long-lived alert costs no more)."""
        q = select(EventRow).where(EventRow.alert_id == int(alert_id))
        if tail is None:
            return tuple(event_of(r) for r in self._s.scalars(q.order_by(EventRow.id)))
        rows = list(self._s.scalars(q.order_by(EventRow.id.desc()).limit(tail)))
        return tuple(event_of(r) for r in reversed(rows))

    def subscriptions(self, department: str) -> list[Subscription]:
        """The department's subscriptions, read once per transaction."""
        if department not in self._subs:
            rows = self._s.scalars(select(SubscriptionRow).where(SubscriptionRow.department == department)
                                   .order_by(SubscriptionRow.id))
            self._subs[department] = [subscription_of(r) for r in rows]
        return self._subs[department]

    def has_outbox(self, event_id: int) -> bool:
        """Whether any notification was planned for the alert event (a throttled one has none)."""
        q = select(OutboxRow.id).where(OutboxRow.event_id == event_id).limit(1)
        return self._s.scalar(q) is not None

    def enqueue(self, items: Iterable[NewOutbox], due_ms: int | None = None) -> int:
        """Adds outbox rows due at ``due_ms`` (now by default); returns how many."""
        now = now_ms()
        n = 0
        for it in items:
            self._s.add(OutboxRow(
                subject=it.subject, subject_id=it.subject_id, event_key=it.event_key, event_id=it.event_id,
                alert_id=int(it.subject_id) if it.subject == "alert" else None,
                subscription_id=None if it.subscription_id is None else int(it.subscription_id),
                channel=it.channel, target_kind=it.target_kind, target=it.target, topic=it.topic,
                department=it.department, site=it.site, metric=it.metric, status="pending", attempts=0,
                next_attempt_ms=now if due_ms is None else due_ms, created_ms=now, payload=it.payload,
            ))
            n += 1
        return n


def _fill(row: AlertRow, entry: Entry) -> None:
    a, t = entry.alert, entry.track
    row.rule, row.kind, row.site, row.family = a.rule, a.kind, a.site, a.family
    row.device, row.metric, row.street = a.device, a.metric, a.street
    row.severity, row.state = int(a.severity), a.state.value
    row.value, row.threshold, row.message = a.value, a.threshold, a.message
    row.started_ms, row.updated_ms = dt_to_ms(a.started_at), dt_to_ms(a.updated_at)
    row.resolved_ms = None if a.resolved_at is None else dt_to_ms(a.resolved_at)
    row.closed_ms = None if a.closed_at is None else dt_to_ms(a.closed_at)
    row.departments = list(a.departments)
    row.flapping = a.flapping
    row.reopen_count, row.reopen_ms = t.reopen_count, list(t.reopen_ms)
    row.reached_ms = {str(k): v for k, v in t.reached_ms.items()}
    row.escalations_done = list(t.escalations_done)
    row.acknowledged_ms, row.acknowledged_by = t.acknowledged_ms, t.acknowledged_by


class BookReads(SessionSource):
    """Read side of the book, for the API and the alerting jobs."""

    def list_alerts(self, *, state: AlertState | str | None = None, site: str | None = None,
                    family: str | None = None, severity_at_least: Severity | None = None,
                    department: str | None = None, since: datetime | None = None, limit: int = 100,
                    before: str | None = None) -> list[Alert]:
        """Alerts newest first (by id, which follows creation), without their events.

        ``since`` keeps alerts started at or after it; ``before`` (an alert id) pages: only
        alerts older than it. ``department`` keeps those routed to it. ``limit`` is clamped
        to 1..1000. Raises ValueError naming the option for a malformed ``before`` or ``state``.
        """
        q = select(AlertRow)
        if state is not None:
            try:
                q = q.where(AlertRow.state == AlertState(state).value)
            except ValueError:
                names = ", ".join(s.value for s in AlertState)
                raise ValueError(f"state={state!r}: expected one of {names}") from None
        if site is not None:
            q = q.where(AlertRow.site == site)
        if family is not None:
            q = q.where(AlertRow.family == family)
        if severity_at_least is not None:
            q = q.where(AlertRow.severity >= int(severity_at_least))
        if department is not None:
            q = q.where(AlertRow.id.in_(
                select(AlertDepartmentRow.alert_id).where(AlertDepartmentRow.department == department)))
        if since is not None:
            q = q.where(AlertRow.started_ms >= dt_to_ms(since))
        if before is not None:
            pk = int_id(before)
            if pk is None:
                raise ValueError(f"before={before!r}: expected an alert id")
            q = q.where(AlertRow.id < pk)
        q = q.order_by(AlertRow.id.desc()).limit(max(1, min(int(limit), MAX_LIMIT)))
        with self._read() as s:
            return [alert_of(r) for r in s.scalars(q)]

    def get_alert(self, alert_id: str, with_events: bool = True) -> Alert | None:
        """One alert (with its events, oldest first), or None for an unknown or malformed id."""
        pk = int_id(alert_id)
        if pk is None:
            return None
        with self._read() as s:
            row = s.get(AlertRow, pk)
            if row is None:
                return None
            events: Sequence[EventRow] = ()
            if with_events:
                q = select(EventRow).where(EventRow.alert_id == pk).order_by(EventRow.id)
                events = s.scalars(q).all()
            return alert_of(row, events)

    def open_alerts_for_site(self, site: str, include_resolved: bool = True) -> list[Alert]:
        """The site's alerts still on the books (not closed), newest first; without events."""
        states = LIVE_STATES if include_resolved else FIRING_STATES
        with self._read() as s:
            rows = s.scalars(select(AlertRow).where(AlertRow.site == site, AlertRow.state.in_(states))
                             .order_by(AlertRow.id.desc()))
            return [alert_of(r) for r in rows]

    def events_since(self, event_id: int, department: str | None = None,
                     limit: int = MAX_LIMIT) -> list[tuple[AlertEvent, Alert]]:
        """Events with id > ``event_id`` (oldest first) and their alerts as they are now, with events.

        For SSE ``Last-Event-ID`` resumption; ``department`` keeps events of alerts routed to it.
        """
        q = select(EventRow).where(EventRow.id > int(event_id))
        if department is not None:
            q = q.where(EventRow.alert_id.in_(
                select(AlertDepartmentRow.alert_id).where(AlertDepartmentRow.department == department)))
        q = q.order_by(EventRow.id).limit(max(1, min(int(limit), MAX_LIMIT)))
        with self._read() as s:
            rows = s.scalars(q).all()
            alerts = self._alerts_with_events(s, {r.alert_id for r in rows})
            return [(event_of(r), alerts[r.alert_id]) for r in rows]

    @staticmethod
    def _alerts_with_events(s: Session, ids: Collection[int]) -> dict[int, Alert]:
        if not ids:
            return {}
        by_alert: dict[int, list[EventRow]] = {i: [] for i in ids}
        for ev in s.scalars(select(EventRow).where(EventRow.alert_id.in_(ids)).order_by(EventRow.id)):
            by_alert[ev.alert_id].append(ev)
        rows = s.scalars(select(AlertRow).where(AlertRow.id.in_(ids)))
        return {r.id: alert_of(r, by_alert[r.id]) for r in rows}

    def last_event_id(self) -> int:
        """The newest event id (0 for an empty book): where a fresh SSE stream starts."""
        with self._read() as s:
            return int(s.scalar(select(func.max(EventRow.id))) or 0)

    def firing(self) -> list[tuple[AlertKey, Severity]]:
        """Keys of open and acknowledged alerts with their severity: what ``Engine.restore`` takes."""
        with self._read() as s:
            rows = s.execute(select(AlertRow.rule, AlertRow.site, AlertRow.device, AlertRow.metric,
                                    AlertRow.severity).where(AlertRow.state.in_(FIRING_STATES)))
            return [(AlertKey(r.rule, r.site, r.device, r.metric), Severity(r.severity)) for r in rows]

    def entries(self, states: Collection[AlertState | str]) -> list[Entry]:
        """Alerts in ``states`` with their tracking (escalation scans open ones)."""
        values = [AlertState(st).value for st in states]
        with self._read() as s:
            return [entry_of(r) for r in s.scalars(select(AlertRow).where(AlertRow.state.in_(values))
                                                    .order_by(AlertRow.id))]

    def count_alerts_by_state(self) -> dict[str, int]:
        """Every state with its count (0 included), for the alerts-by-state gauge."""
        out = {st.value: 0 for st in AlertState}
        with self._read() as s:
            for state, n in s.execute(select(AlertRow.state, func.count()).group_by(AlertRow.state)):
                out[str(state)] = int(n)
        return out
