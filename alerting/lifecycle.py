"""The alert lifecycle: engine signals and people's actions become book transitions and events.

States (contract section 5): ``open`` → ``acknowledged`` → ``resolved`` → ``closed``; a
resolved alert whose condition returns before it is closed is ``reopened``. Every
transition is one event (time, actor, note) committed with the alert change and the
notifications it causes, in one transaction.

Flapping, as Kapacitor's ``.flapping()`` intends: an alert reopened ``flap_reopens`` times
within ``flap_window_s`` is marked ``flapping``. The reopen that starts it is notified (the
payload says ``"flapping": true``); later ``reopened`` and ``resolved`` events are recorded,
streamed and written to InfluxDB but not notified. Once no reopen has happened for a whole
window the mark is lifted (``settle_flapping``) and, if the latest event was held back,
it is notified then, so receivers end up with the alert's true state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from alerting.journal import LeaseMark
from alerting.route import Router
from domain.alerts import Alert, AlertEvent, AlertState, EventType, Signal
from domain.district import District
from domain.severity import Severity
from notify import EVENTS_TAIL, Notice, enqueue_notice
from store.state.book import BookTx
from store.state.records import Entry, Tracking, ms_to_dt
from store.state.session import now_ms
from store.state.store import StateStore

FLAP_REOPENS = 3
FLAP_WINDOW_S = 600.0
ENGINE, SCHEDULER = "engine", "scheduler"



class Plan(Protocol):
    """What the lifecycle needs of ``notify.Planner``: an alert event's notice."""

    def notice(self, event: AlertEvent, alert: Alert) -> Notice: ...


class Fence(Protocol):
    """With several processes (contract section 12): keeps the signals of partitions whose lease
    this process still holds, checked inside the write's transaction ``tx``; drops the others."""

    def admit(self, tx: BookTx, signals: Sequence[Signal]) -> Sequence[Signal]: ...

    def lease_of(self, signal: Signal) -> LeaseMark | None:
        """The lease the signal's partition is held under now (None: not held), for the journal."""


class Superseded(Exception):
    """A journaled entry's partition was claimed since its lease: the entry must not be applied."""

    def __init__(self, lease: LeaseMark) -> None:
        super().__init__(f"partition {lease.partition} of {lease.partitions} was taken over since "
                         f"epoch {lease.epoch}")
        self.lease = lease


class AlertNotFound(LookupError):
    def __init__(self, alert_id: str) -> None:
        super().__init__(f"no alert with id {alert_id!r}")
        self.alert_id = alert_id


class TransitionError(Exception):
    """An action the alert's state does not allow (the API answers 409)."""

    def __init__(self, alert_id: str, state: AlertState, action: str, allowed: str) -> None:
        super().__init__(f"alert {alert_id} is {state.value}: cannot {action} it (only {allowed})")
        self.alert_id, self.state, self.action = alert_id, state, action


@dataclass(frozen=True, slots=True)
class Change:
    """One committed transition: its event, the alert after it and the event's notice
    (rendered once: the outbox rows and the SSE stream share it). The alert carries all its
    events after a person's action (the API answers with them), only the last ``EVENTS_TAIL``
    after the engine's or the scheduler's, which is all a notice carries: a flapping alert's
    transitions do not read back its whole history each time."""

    event: AlertEvent
    alert: Alert
    notified: bool  # False when flapping held the notification back
    notice: Notice | None = None  # None without a planner (tests of the book alone)


def _merge(old: Iterable[str], new: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(all departments in order, the ones ``new`` adds)."""
    have = tuple(old)
    added = tuple(d for d in dict.fromkeys(new) if d not in have)
    return have + added, added


def _reached(prev: dict[int, int], severity: Severity, at_ms: int) -> dict[int, int]:
    """First time at or above each severity up to ``severity`` (escalation timers start there)."""
    out = dict(prev)
    for s in Severity:
        if s <= severity:
            out.setdefault(int(s), at_ms)
    return out


def _duration(seconds: float) -> str:
    """900 → "15m", as durations are written in the config."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


class Lifecycle:
    def __init__(self, district: District, state: StateStore, router: Router, plan: Plan | None = None,
                 *, flap_reopens: int = FLAP_REOPENS, flap_window_s: float = FLAP_WINDOW_S) -> None:
        if flap_reopens < 1 or flap_window_s <= 0:
            raise ValueError(f"flapping needs flap_reopens >= 1 and flap_window_s > 0, "
                             f"got {flap_reopens} and {flap_window_s}")
        self._district = district
        self._state = state
        self._router = router
        self._plan = plan
        self._flap_reopens = flap_reopens
        self._flap_window_ms = int(flap_window_s * 1000)
        self.fence: Fence | None = None  # set by service.runtime when leases divide the sites

    # -- engine signals ---------------------------------------------------------------------

    def apply(self, signals: Sequence[Signal], lease: LeaseMark | None = None) -> list[Change]:
        """Applies the signals in order, in one transaction; returns the transitions made.

        ``lease`` (a journal replay): raises Superseded, writing nothing, unless the partition's lease
        row still has that epoch, checked and locked in this same transaction."""
        if not signals:
            return []
        with self._state.transaction() as tx:
            if lease is not None and not tx.lease_at(lease.partition, lease.epoch, lease.partitions):
                raise Superseded(lease)
            if self.fence is not None:
                signals = self.fence.admit(tx, signals)
            return [c for sig in signals if (c := self._signal(tx, sig)) is not None]

    def _signal(self, tx: BookTx, sig: Signal) -> Change | None:
        entry = tx.live(sig.key)
        if not sig.firing:
            if entry is None or entry.alert.state is AlertState.RESOLVED:
                return None
            return self._resolve(tx, entry, sig)
        sev = sig.severity if sig.severity is not None else Severity.YELLOW
        if entry is None:
            return self._fire(tx, sig, sev)
        if entry.alert.state is AlertState.RESOLVED:
            return self._reopen(tx, entry, sig, sev)
        if sev != entry.alert.severity:
            return self._severity(tx, entry, sig, sev)
        return None  # already firing at that severity (e.g. the engine re-states it after a restore)

    def _fire(self, tx: BookTx, sig: Signal, sev: Severity) -> Change:
        k, at = sig.key, ms_to_dt(sig.at_ms)
        alert = Alert(id="", rule=k.rule, kind=sig.kind, site=k.site, family=sig.family, device=k.device,
                      metric=k.metric, severity=sev, state=AlertState.OPEN, value=sig.value,
                      threshold=sig.threshold, message=sig.message, started_at=at, updated_at=at)
        alert = replace(alert, street=self._router.street_of(alert))
        alert = replace(alert, departments=self._router.departments_for(alert))
        entry = tx.insert(Entry(alert, Tracking(reached_ms=_reached({}, sev, sig.at_ms))))
        return self._record(tx, entry, EventType.FIRED, sig.at_ms, ENGINE, value=sig.value,
                            departments=alert.departments)

    def _reopen(self, tx: BookTx, entry: Entry, sig: Signal, sev: Severity) -> Change:
        a, t = entry.alert, entry.track
        recent = (*self._recent(t.reopen_ms, sig.at_ms), sig.at_ms)
        flapping = len(recent) >= self._flap_reopens
        alert = replace(a, state=AlertState.OPEN, severity=sev, value=sig.value, threshold=sig.threshold,
                        message=sig.message or a.message, updated_at=ms_to_dt(sig.at_ms), resolved_at=None,
                        flapping=flapping)
        deps, added = _merge(a.departments, self._router.departments_for(alert))
        track = replace(t, reopen_count=t.reopen_count + 1, reopen_ms=recent,
                        reached_ms=_reached({}, sev, sig.at_ms), acknowledged_ms=None, acknowledged_by=None)
        entry = tx.update(Entry(replace(alert, departments=deps), track))
        return self._record(tx, entry, EventType.REOPENED, sig.at_ms, ENGINE, value=sig.value,
                            departments=added, notify=not (flapping and a.flapping))

    def _severity(self, tx: BookTx, entry: Entry, sig: Signal, sev: Severity) -> Change:
        a, t = entry.alert, entry.track
        alert = replace(a, severity=sev, value=sig.value, threshold=sig.threshold,
                        message=sig.message or a.message, updated_at=ms_to_dt(sig.at_ms))
        # A lower severity never takes departments away: whoever was told stays on the alert.
        deps, added = _merge(a.departments, self._router.departments_for(alert))
        track = replace(t, reached_ms=_reached(dict(t.reached_ms), sev, sig.at_ms))
        entry = tx.update(Entry(replace(alert, departments=deps), track))
        return self._record(tx, entry, EventType.SEVERITY_CHANGED, sig.at_ms, ENGINE, value=sig.value,
                            departments=added)

    def _resolve(self, tx: BookTx, entry: Entry, sig: Signal) -> Change:
        a = entry.alert
        flapping = a.flapping and len(self._recent(entry.track.reopen_ms, sig.at_ms)) >= self._flap_reopens
        at = ms_to_dt(sig.at_ms)
        value = sig.value if sig.value is not None else a.value
        alert = replace(a, state=AlertState.RESOLVED, value=value, updated_at=at, resolved_at=at,
                        flapping=flapping)
        entry = tx.update(Entry(alert, entry.track))
        return self._record(tx, entry, EventType.RESOLVED, sig.at_ms, ENGINE, value=value,
                            note=sig.message or None, notify=not flapping)

    def _recent(self, times: Iterable[int], at_ms: int) -> tuple[int, ...]:
        return tuple(x for x in times if x > at_ms - self._flap_window_ms)

    # -- people ------------------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, note: str | None = None, at_ms: int | None = None) -> Change:
        """open → acknowledged; raises AlertNotFound, or TransitionError in any other state."""
        at = now_ms() if at_ms is None else at_ms
        with self._state.transaction() as tx:
            entry = tx.get(alert_id)
            if entry is None:
                raise AlertNotFound(alert_id)
            if entry.alert.state is not AlertState.OPEN:
                raise TransitionError(alert_id, entry.alert.state, "acknowledge", "an open alert can be")
            alert = replace(entry.alert, state=AlertState.ACKNOWLEDGED, updated_at=ms_to_dt(at))
            track = replace(entry.track, acknowledged_ms=at, acknowledged_by=by)
            entry = tx.update(Entry(alert, track))
            return self._record(tx, entry, EventType.ACKNOWLEDGED, at, by, note=note, tail=None)

    def close(self, alert_id: str, by: str, note: str | None = None, at_ms: int | None = None) -> Change:
        """Any state but closed → closed (the rectification is confirmed); raises AlertNotFound or
        TransitionError for an alert already closed."""
        at = now_ms() if at_ms is None else at_ms
        with self._state.transaction() as tx:
            entry = tx.get(alert_id)
            if entry is None:
                raise AlertNotFound(alert_id)
            if entry.alert.state is AlertState.CLOSED:
                raise TransitionError(alert_id, entry.alert.state, "close", "a not yet closed alert can be")
            alert = replace(entry.alert, state=AlertState.CLOSED, updated_at=ms_to_dt(at),
                            closed_at=ms_to_dt(at), flapping=False)
            entry = tx.update(Entry(alert, entry.track))
            return self._record(tx, entry, EventType.CLOSED, at, by, note=note, tail=None)

    # -- scheduler ---------------------------------------------------------------------------

    def escalate(self, alert_id: str, step: int, at_ms: int) -> Change | None:
        """Takes escalation step ``step`` (index into the config's list) if the alert still
        qualifies: open, at or above the step's severity, step not yet taken."""
        rule = self._district.escalation[step]
        with self._state.transaction() as tx:
            entry = tx.get(alert_id)
            if entry is None or entry.alert.state is not AlertState.OPEN:
                return None
            if step in entry.track.escalations_done or entry.alert.severity < rule.severity_at_least:
                return None
            a = entry.alert
            deps, added = _merge(a.departments, self._router.resolve(rule.notify, a.site))
            track = replace(entry.track, escalations_done=(*entry.track.escalations_done, step))
            entry = tx.update(Entry(replace(a, departments=deps, updated_at=ms_to_dt(at_ms)), track))
            note = f"unacknowledged for {_duration(rule.unacknowledged_for)} (escalation step {step + 1})"
            return self._record(tx, entry, EventType.ESCALATED, at_ms, SCHEDULER, value=a.value, note=note,
                                departments=added)

    def settle_flapping(self, now: int | None = None) -> list[Change]:
        """Lifts the flapping mark of alerts with no reopen for a whole window; notifies the
        latest event if flapping held it back. Returns those (re)notified."""
        at = now_ms() if now is None else now
        out = []
        for candidate in self._state.entries([AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.RESOLVED]):
            if not candidate.alert.flapping or self._recent(candidate.track.reopen_ms, at):
                continue
            with self._state.transaction() as tx:
                entry = tx.get(candidate.alert.id)
                if entry is None or not entry.alert.flapping:
                    continue
                entry = tx.update(Entry(replace(entry.alert, flapping=False), entry.track))
                events = tx.events_of(entry.alert.id)
                alert = replace(entry.alert, events=events)
                if events and not tx.has_outbox(events[-1].id) and self._plan is not None:
                    notice = self._plan.notice(events[-1], alert)
                    enqueue_notice(tx, notice)
                    out.append(Change(events[-1], alert, True, notice))
        return out

    # -- shared --------------------------------------------------------------------------------

    def _record(self, tx: BookTx, entry: Entry, type: EventType, at_ms: int, by: str, *,
                value: float | None = None, note: str | None = None, departments: Sequence[str] = (),
                notify: bool = True, tail: int | None = EVENTS_TAIL) -> Change:
        a = entry.alert
        event = tx.add_event(a.id, type, at_ms, a.severity, value=value, by=by, note=note,
                             departments=departments)
        alert = replace(a, events=tx.events_of(a.id, tail))
        notice = None if self._plan is None else self._plan.notice(event, alert)
        if notify and notice is not None:
            enqueue_notice(tx, notice)
        return Change(event, alert, notify, notice)
