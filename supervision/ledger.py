"""The hazard lifecycle: listing (self-reports, inspections; from alerts in ``supervision.listing``)
and the moves of section 10: ``listed`` → ``rectifying`` (a plan with the five essentials) →
``review`` (submitted) → ``closed`` (verified), and ``review`` → ``rectifying`` on rejection. Every move is one event
(time, ``by``, note) committed with the hazard change and its notifications; a wrong-state move
raises ``HazardConflict`` (409). Callers hand in a ``Principal``; the access rules are in
``supervision.access``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.orm import Session

from domain.alerts import Alert, AlertState
from domain.clock import now_ms
from domain.district import District
from domain.hazards import (
    NOTIFIED,
    Attachment,
    Hazard,
    HazardEvent,
    HazardEventType,
    HazardLevel,
    HazardSource,
    HazardState,
    Plan,
)
from domain.principal import Principal, Role
from notify import Notice
from store.state.hazards import HazardTx
from store.state.records import dt_to_ms, ms_to_dt
from store.state.store import StateStore
from supervision.access import check_verify, check_write, may_file_at, sees
from supervision.errors import HazardConflict, HazardForbidden, HazardInvalid, HazardNotFound
from supervision.listing import TITLE_MAX, list_alert

log = logging.getLogger(__name__)
FIRING = (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class HazardNotifier(Protocol):
    def plan(self, session: Session, event: HazardEvent, hazard: Hazard, departments: Sequence[str]) -> Notice:
        """Adds the event's outbox rows in the transaction; returns their notice (rendered once)."""

    def published(self, event: HazardEvent, notice: Notice) -> None:
        """After the commit, with the notice ``plan`` made: the SSE stream and the delivery wake-up."""


CloseAlert = Callable[[str, str, str | None], object]


@dataclass(frozen=True, slots=True)
class Move:
    """One committed hazard change: its event, the hazard after it (with its events) and, for a
    notified event, the notice its outbox rows were planned from (published after the commit)."""

    event: HazardEvent
    hazard: Hazard
    notice: Notice | None = None


class Ledger:
    def __init__(self, district: District, state: StateStore, notifier: HazardNotifier | None = None,
                 close_alert: CloseAlert | None = None) -> None:
        self.district = district
        self.state = state
        self.notifier = notifier
        self.close_alert = close_alert
        self.cfg = district.config.supervision

    # -- shared ------------------------------------------------------------------------------

    def deadline_for(self, level: HazardLevel, listed_ms: int) -> int:
        d = self.cfg.deadlines
        return listed_ms + int((d.major if level is HazardLevel.MAJOR else d.general) * 1000)

    def record(self, tx: HazardTx, h: Hazard, type: HazardEventType, at_ms: int, by: str, *,
                note: str | None = None, attachment: str | None = None,
                departments: Sequence[str] = ()) -> Move:
        event = tx.add_event(h.id, type, at_ms, by, note=note, attachment=attachment, departments=departments)
        full = tx.with_events(h)
        notice = None
        if type in NOTIFIED and self.notifier is not None:
            notice = self.notifier.plan(tx.session, event, full, full.departments)
        return Move(event, full, notice)

    def published(self, moves: Sequence[Move]) -> None:
        """Post-commit side effects of ``moves``; never raises."""
        if self.notifier is None:
            return
        for m in moves:
            if m.notice is not None:
                try:
                    self.notifier.published(m.event, m.notice)
                except Exception:
                    log.exception("supervision: publishing hazard event %s failed", m.event.id)

    def _load(self, tx: HazardTx, who: Principal, hazard_id: str) -> Hazard:
        h = tx.get(hazard_id)
        if h is None or not sees(who, h):
            raise HazardNotFound(f"hazard {hazard_id!r} not found")
        return h

    def site_departments(self, site_id: str) -> tuple[str, ...]:
        site = self.district.sites[site_id]
        return tuple(dict.fromkeys((site.sector, self.district.street_office(site))))

    # -- listing -----------------------------------------------------------------------------

    def file(self, who: Principal, site: str, title: str, description: str = "",
             level: HazardLevel = HazardLevel.GENERAL, source: HazardSource | None = None,
             at_ms: int | None = None) -> Move:
        """A self-report (site users, for their own sites) or an inspection (departments)."""
        if site not in self.district.sites:
            raise HazardInvalid(f"body site: unknown site {site!r}")
        if len(title) > TITLE_MAX:
            raise HazardInvalid(f"body title: at most {TITLE_MAX} characters (got {len(title)})")
        if who.role is Role.VIEWER:
            raise HazardForbidden(f"{who.actor} is a viewer: may not file hazards")
        if who.role is not Role.SITE and not may_file_at(who, self.district, site):
            raise HazardNotFound(f"site {site!r} not found")  # as reading it answers: no filing at others' sites
        if source is None:
            source = HazardSource.SELF_REPORT if who.role is Role.SITE else HazardSource.INSPECTION
        if source is HazardSource.ALERT:
            raise HazardInvalid("body source: 'alert' hazards are listed from alerts, not filed "
                                "(expected self_report or inspection)")
        if who.role is Role.SITE and (source is not HazardSource.SELF_REPORT or site not in who.sites):
            raise HazardForbidden(f"{who.actor} may self-report hazards of its own sites only")
        if who.role is Role.OPERATOR and source is not HazardSource.INSPECTION:
            raise HazardForbidden(f"{who.actor} files inspections; self-reports come from the site")
        at = now_ms() if at_ms is None else at_ms
        # The inspecting department follows up its own finding, whichever site it is at.
        deps = (*self.site_departments(site), *((who.department,) if who.department else ()))
        move = self._insert(site, title, description, level, source, None, at, who.actor, deps)
        self.published([move])
        return move

    def _insert(self, site_id: str, title: str, description: str, level: HazardLevel, source: HazardSource,
                rule: str | None, at: int, by: str, departments: Sequence[str],
                alert_ids: Sequence[str] = ()) -> Move:
        site = self.district.sites[site_id]
        h = Hazard(id="", site=site_id, family=site.family, street=site.street, sector=site.sector,
                   title=title, description=description, level=level, source=source,
                   state=HazardState.LISTED, listed_at=ms_to_dt(at),
                   deadline=ms_to_dt(self.deadline_for(level, at)), rule=rule,
                   departments=tuple(dict.fromkeys(departments)))
        with self.state.hazard_transaction() as tx:
            h = tx.insert(h, by)
            for aid in alert_ids:
                tx.add_alert(h.id, aid, at)
            return self.record(tx, h, HazardEventType.LISTED, at, by, departments=h.departments)

    def list_alert(self, alert: Alert, at_ms: int | None = None) -> Move | None:
        """Lists an alert at or above ``supervision.list`` (red → major), joins it to the unclosed
        hazard of its rule at its site, or raises that hazard to major; idempotent
        (``supervision.listing``)."""
        return list_alert(self, alert, at_ms)

    # -- moves -------------------------------------------------------------------------------

    def plan(self, who: Principal, hazard_id: str, plan: Plan, at_ms: int | None = None) -> Move:
        """Files (or revises) the five essentials: listed|rectifying → rectifying."""
        at = now_ms() if at_ms is None else at_ms
        for name in ("measures", "owner", "funds", "contingency"):
            if not str(getattr(plan, name)).strip():
                raise HazardInvalid(f"body {name}: required (the five essentials, 五到位)")
        with self.state.hazard_transaction() as tx:
            h = self._load(tx, who, hazard_id)
            check_write(who, h, "plan")
            if h.state not in (HazardState.LISTED, HazardState.RECTIFYING):
                raise HazardConflict(f"hazard {h.id} is {h.state.value}: a plan is filed while listed or "
                                     "rectifying")
            if dt_to_ms(plan.deadline) < at and not who.is_admin:
                # A time limit already past would make the hazard overdue the moment it is filed.
                raise HazardInvalid(f"body deadline: {plan.deadline.isoformat()} is in the past (now "
                                    f"{ms_to_dt(at).isoformat()}); a plan's time limit lies ahead")
            if plan.deadline > h.deadline and not who.is_admin:
                raise HazardInvalid(f"body deadline: {plan.deadline.isoformat()} is later than the "
                                    f"hazard's deadline {h.deadline.isoformat()} (only the admin extends it)")
            # The plan's time limit (时限到位) becomes the hazard's: an earlier commitment is held to,
            # a later one is the admin granting more time.
            deadline = plan.deadline
            overdue = h.overdue and dt_to_ms(deadline) <= at
            h = tx.update(replace(h, plan=plan, state=HazardState.RECTIFYING, deadline=deadline,
                                  overdue=overdue, updated_at=ms_to_dt(at)))
            move = self.record(tx, h, HazardEventType.PLANNED, at, who.actor, note=plan.measures)
        self.published([move])
        return move

    def progress(self, who: Principal, hazard_id: str, note: str, at_ms: int | None = None) -> Move:
        if not note.strip():
            raise HazardInvalid("body note: required")
        return self._note(who, hazard_id, HazardEventType.PROGRESS, "report progress on", note, at_ms)

    def _note(self, who: Principal, hazard_id: str, type: HazardEventType, action: str, note: str | None,
              at_ms: int | None, attachment: str | None = None) -> Move:
        at = now_ms() if at_ms is None else at_ms
        with self.state.hazard_transaction() as tx:
            h = self._load(tx, who, hazard_id)
            check_write(who, h, action)
            if h.state is HazardState.CLOSED:
                raise HazardConflict(f"hazard {h.id} is closed: cannot {action} it")
            h = tx.update(replace(h, updated_at=ms_to_dt(at)))
            return self.record(tx, h, type, at, who.actor, note=note, attachment=attachment)

    def submit(self, who: Principal, hazard_id: str, note: str | None = None, at_ms: int | None = None) -> Move:
        """Rectification reported done: rectifying → review."""
        at = now_ms() if at_ms is None else at_ms
        with self.state.hazard_transaction() as tx:
            h = self._load(tx, who, hazard_id)
            check_write(who, h, "submit")
            if h.state is not HazardState.RECTIFYING:
                raise HazardConflict(f"hazard {h.id} is {h.state.value}: only a rectifying hazard is submitted")
            h = tx.update(replace(h, state=HazardState.REVIEW, updated_at=ms_to_dt(at)))
            move = self.record(tx, h, HazardEventType.SUBMITTED, at, who.actor, note=note)
        self.published([move])
        return move

    def verify(self, who: Principal, hazard_id: str, accept: bool, note: str, at_ms: int | None = None) -> Move:
        """review → closed (销账; its resolved alerts are closed too) or back to rectifying."""
        if not note.strip():
            raise HazardInvalid("body note: required to verify")
        at = now_ms() if at_ms is None else at_ms
        with self.state.hazard_transaction() as tx:
            h = self._load(tx, who, hazard_id)
            check_verify(who, h)
            if h.state is not HazardState.REVIEW:
                raise HazardConflict(f"hazard {h.id} is {h.state.value}: only a hazard under review is verified")
            if not accept:
                h = tx.update(replace(h, state=HazardState.RECTIFYING, updated_at=ms_to_dt(at)))
                move = self.record(tx, h, HazardEventType.REJECTED, at, who.actor, note=note)
                resolved: list[str] = []
            else:
                states = tx.alert_states(h.id)
                firing = sorted(a for a, st in states.items() if st in FIRING)
                if firing:
                    raise HazardConflict(f"hazard {h.id} cannot be closed: alert(s) {', '.join(firing)} "
                                         "still open or acknowledged")
                resolved = sorted(a for a, st in states.items() if st is AlertState.RESOLVED)
                h = tx.update(replace(h, state=HazardState.CLOSED, closed_at=ms_to_dt(at),
                                      updated_at=ms_to_dt(at)))
                move = self.record(tx, h, HazardEventType.CLOSED, at, who.actor, note=note)
        self.published([move])
        for alert_id in resolved:
            self._close_alert(alert_id, who.actor, f"hazard {h.id} verified: {note}")
        return move

    def _close_alert(self, alert_id: str, by: str, note: str) -> None:
        """Closes an alert the hazard's verification found resolved, if it still is.

        One whose condition came back since (reopened) is a new problem for its department, not
        rectified by this hazard: it stays open. ``close_alert`` (``AlertService.close``) closes
        any state, so the state is read again right before; a reopening in the moment between
        that read and the close's own transaction is not caught (that needs the check inside
        alerting's close).
        """
        if self.close_alert is None:
            return
        current = self.state.get_alert(alert_id)
        if current is None or current.state is not AlertState.RESOLVED:
            log.info("supervision: alert %s is %s now, not resolved: left as it is", alert_id,
                     "gone" if current is None else current.state.value)
            return
        try:
            self.close_alert(alert_id, by, note)
        except Exception as err:  # closed meanwhile by another path: the hazard is still off the books
            log.warning("supervision: closing alert %s after its hazard failed: %s", alert_id, err)

    def attach(self, who: Principal, hazard_id: str, name: str, type: str, data: bytes, sha256: str,
               at_ms: int | None = None) -> tuple[Attachment, Move]:
        """Stores checked evidence (``supervision.evidence``) with its ``attachment`` event."""
        at = now_ms() if at_ms is None else at_ms
        with self.state.hazard_transaction() as tx:
            h = self._load(tx, who, hazard_id)
            check_write(who, h, "attach evidence to")
            if h.state is HazardState.CLOSED:
                raise HazardConflict(f"hazard {h.id} is closed: cannot attach evidence to it")
            att = tx.add_attachment(h.id, name, type, data, sha256, who.actor)
            h = tx.update(replace(h, updated_at=ms_to_dt(at)))
            return att, self.record(tx, h, HazardEventType.ATTACHMENT, at, who.actor, note=name,
                                     attachment=att.id)

    def readable(self, who: Principal, hazard_id: str) -> Hazard:
        h = self.state.get_hazard(hazard_id)
        if h is None or not sees(who, h):
            raise HazardNotFound(f"hazard {hazard_id!r} not found")
        return h
