"""Escalation (逐级报告): open alerts nobody acknowledged climb to more departments.

A scheduler job. Step ``i`` of the config's ``escalation`` list applies to an alert that is
``open`` (acknowledgement stops escalation; resolved alerts need no one more) at or above
the step's ``severity_at_least``, once the alert has been at or above that severity for
``unacknowledged_for``. The clock starts when the alert first reached that severity in its
current open period: an alert that fires yellow and turns orange later gets its orange
steps counted from the raise, not from the start, and a reopened alert starts afresh.
Each step is taken once per alert: it adds the step's departments (``sector``/``street``
resolved from the site) and records ``escalated``, which goes to every department on the
alert, old and new.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerting.lifecycle import Change, Lifecycle
from domain.alerts import AlertState
from domain.clock import now_ms
from domain.district import District
from store.state.records import Entry
from store.state.store import StateStore


def due_steps(district: District, entries: Iterable[Entry], at_ms: int) -> list[tuple[str, int]]:
    """(alert id, step index) pairs to take now, in alert then step order. Pure."""
    steps = list(enumerate(district.escalation))
    out = []
    for entry in entries:
        a, t = entry.alert, entry.track
        if a.state is not AlertState.OPEN:
            continue
        for i, step in steps:
            if i in t.escalations_done or a.severity < step.severity_at_least:
                continue
            since = t.reached_ms.get(int(step.severity_at_least))
            if since is not None and at_ms - since >= step.unacknowledged_for * 1000:
                out.append((a.id, i))
    return out


class Escalator:
    def __init__(self, district: District, state: StateStore, lifecycle: Lifecycle) -> None:
        self._district = district
        self._state = state
        self._lifecycle = lifecycle

    def run(self, at_ms: int | None = None) -> list[Change]:
        """One pass: takes every due step; returns the ``escalated`` transitions made."""
        if not self._district.escalation:
            return []
        now = now_ms() if at_ms is None else at_ms
        out = []
        for alert_id, step in due_steps(self._district, self._state.entries([AlertState.OPEN]), now):
            # The lifecycle re-checks under the row lock: an acknowledgement may have won the race.
            change = self._lifecycle.escalate(alert_id, step, now)
            if change is not None:
                out.append(change)
        return out
