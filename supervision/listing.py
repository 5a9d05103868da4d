"""Listing from alerts (挂账): an alert at or above ``supervision.list`` becomes a hazard, joins the
unclosed hazard of its rule at its site, or raises that hazard to major.

Idempotent and serialised across processes (``HazardTx.lock_listing``), so the post-commit hook
and the catch-up sweep (``supervision.service``) may both try the same alert. Part of ``Ledger``
(``Ledger.list_alert``), kept apart for size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from domain.alerts import Alert, AlertState
from domain.clock import now_ms
from domain.hazards import Hazard, HazardEventType, HazardLevel, HazardSource, HazardState
from domain.severity import Severity
from store.state.hazards import HazardTx
from store.state.records import dt_to_ms, ms_to_dt

if TYPE_CHECKING:
    from supervision.ledger import Ledger, Move

ENGINE = "engine"
TITLE_MAX = 200  # the hazards.title column (PostgreSQL refuses longer, and the sweep would retry forever)


def alert_title(site_name: str, rule: str, severity: str) -> str:
    """``{site}: {rule} ({severity})`` in at most ``TITLE_MAX`` characters: a long site name is cut
    (with an ellipsis) so the rule and severity, which say what the hazard is, stay whole."""
    tail = f": {rule} ({severity})"
    if len(site_name) + len(tail) <= TITLE_MAX:
        return site_name + tail
    room = TITLE_MAX - len(tail) - 1
    return (site_name[:room] + "…" + tail) if room > 0 else (site_name + tail)[:TITLE_MAX]


def _merge(old: Sequence[str], new: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    have = tuple(old)
    added = tuple(d for d in dict.fromkeys(new) if d not in have)
    return have + added, added


def list_alert(ledger: Ledger, alert: Alert, at_ms: int | None = None) -> Move | None:
    """The listing move for ``alert``, or None when there is nothing to record."""
    cfg = ledger.cfg.list_
    if not cfg.from_alerts or alert.severity < cfg.severity_at_least or alert.site not in ledger.district.sites:
        return None
    at = now_ms() if at_ms is None else at_ms
    level = HazardLevel.MAJOR if alert.severity >= Severity.RED else HazardLevel.GENERAL
    with ledger.state.hazard_transaction() as tx:
        tx.lock_listing()
        h = tx.open_of_alert(alert.id)
        joined = h is None
        if h is None:
            h = tx.open_for_rule(alert.site, alert.rule)
        if h is None:
            if tx.ever_listed(alert.id):
                return None  # its hazard was closed; the alert is on that record
            return None if alert.state is AlertState.CLOSED else _new_from(ledger, tx, alert, level, at)
        deps, added = _merge(h.departments, alert.departments)
        raise_level = level is HazardLevel.MAJOR and h.level is HazardLevel.GENERAL
        if not joined and not added and not raise_level:
            return None
        if joined:
            tx.add_alert(h.id, alert.id, at)
        new = replace(h, departments=deps, updated_at=ms_to_dt(at))
        if raise_level:
            deadline = min(dt_to_ms(h.deadline), ledger.deadline_for(HazardLevel.MAJOR, at))
            new = replace(new, level=HazardLevel.MAJOR, deadline=ms_to_dt(deadline))
        new = tx.update(new)
        if joined:
            return ledger.record(tx, new, HazardEventType.JOINED, at, ENGINE,
                                 note=f"alert {alert.id} ({alert.severity.label})", departments=added)
        if raise_level:
            return ledger.record(tx, new, HazardEventType.RAISED, at, ENGINE,
                                 note=f"alert {alert.id} is red: major hazard", departments=added)
        return None  # only departments grew (an escalated alert): on the hazard, no event


def _new_from(ledger: Ledger, tx: HazardTx, alert: Alert, level: HazardLevel, at: int) -> Move:
    site = ledger.district.sites[alert.site]
    deps = tuple(dict.fromkeys((*ledger.site_departments(alert.site), *alert.departments)))
    h = Hazard(id="", site=alert.site, family=site.family, street=site.street, sector=site.sector,
               title=alert_title(site.name, alert.rule, alert.severity.label),
               description=alert.message or f"alert {alert.id} on {alert.metric or alert.rule}",
               level=level, source=HazardSource.ALERT, state=HazardState.LISTED, listed_at=ms_to_dt(at),
               deadline=ms_to_dt(ledger.deadline_for(level, at)), rule=alert.rule, departments=deps)
    h = tx.insert(h, ENGINE)
    tx.add_alert(h.id, alert.id, at)
    return ledger.record(tx, h, HazardEventType.LISTED, at, ENGINE, note=f"alert {alert.id}", departments=deps)
