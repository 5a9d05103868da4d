"""The supervision side of one process: listing from alerts, the sweeps, the overdue job.

Listing must survive a crash between an alert's commit and its listing, so it happens twice:
at once, from ``AlertService``'s post-commit listeners, and in a catch-up sweep over the book
(alerts at or above the listing severity that no hazard holds). Both go through
``Ledger.list_alert``, which is idempotent (one ``hazard_alerts`` row per hazard and alert, one
unclosed hazard per site and rule, listing serialised across processes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy.exc import SQLAlchemyError

from domain.alerts import Alert, AlertEvent, EventType
from domain.district import District
from store.state.records import dt_to_ms
from store.state.store import StateStore
from supervision.ledger import CloseAlert, HazardNotifier, Ledger, Move
from supervision.overdue import OverdueChain
from supervision.relay import HazardRelay

log = logging.getLogger(__name__)
LISTING_EVENTS = frozenset({EventType.FIRED, EventType.SEVERITY_CHANGED, EventType.REOPENED,
                            EventType.ESCALATED})
SWEEP_S = 30.0
OVERDUE_S = 15.0  # one indexed query when nothing is due


class Committed(Protocol):
    """What the hook reads of ``alerting.lifecycle.Change`` (supervision does not import alerting)."""

    @property
    def event(self) -> AlertEvent: ...

    @property
    def alert(self) -> Alert: ...


class SupervisionService:
    """``close_alert`` is ``AlertService.close`` (a verified hazard closes its resolved alerts
    through it, so their events and notifications happen); ``service`` also adds ``on_changes``
    to ``AlertService.listeners``."""

    def __init__(self, district: District, state: StateStore, notifier: HazardNotifier | None = None,
                 close_alert: CloseAlert | None = None, *, sweep_s: float = SWEEP_S,
                 overdue_s: float = OVERDUE_S) -> None:
        self.district = district
        self.state = state
        self.ledger = Ledger(district, state, notifier, close_alert)
        self.overdue = OverdueChain(self.ledger)
        self._threshold = district.config.supervision.list_.severity_at_least
        self._intervals = (sweep_s, overdue_s)
        self._scheduler: BaseScheduler | None = None
        self._job_ids: list[str] = []
        self.relay: HazardRelay | None = None  # other processes' hazard events into this one's SSE

    def on_changes(self, changes: Sequence[Committed]) -> None:
        """AlertService's post-commit hook: lists what reached the listing severity. Never raises
        (a failure here is repaired by the sweep)."""
        moves: list[Move] = []
        for c in changes:
            if c.event.type not in LISTING_EVENTS or c.alert.severity < self._threshold:
                continue
            try:
                move = self.ledger.list_alert(c.alert, dt_to_ms(c.event.at))
            except Exception:
                log.exception("supervision: listing alert %s failed; the sweep will retry", c.alert.id)
                continue
            if move is not None:
                moves.append(move)
        self.ledger.published(moves)

    def sweep(self) -> list[Move]:
        """Lists alerts the hook missed (a crash between commit and listing)."""
        if not self.district.config.supervision.list_.from_alerts:
            return []
        moves = [m for a in self.state.unlisted_alerts(self._threshold)
                 if (m := self.ledger.list_alert(a, dt_to_ms(a.updated_at))) is not None]
        if moves:
            log.warning("supervision: the sweep listed %d alerts the hook had missed", len(moves))
        self.ledger.published(moves)
        return moves

    def run_overdue(self, at_ms: int | None = None) -> list[Move]:
        return self.overdue.run(at_ms)

    def start(self, scheduler: BaseScheduler) -> None:
        """Registers the sweep and the overdue job (each runs in one process at a time)."""
        self._scheduler = scheduler
        sweep_s, overdue_s = self._intervals
        for name, func, every in (("hazard-listing-sweep", self.sweep, sweep_s),
                                  ("hazard-overdue", self.run_overdue, overdue_s)):
            job = scheduler.add_job(_logged(func), "interval", seconds=every, id=f"{name}-{id(self)}",
                                    max_instances=1, coalesce=True, replace_existing=True)
            self._job_ids.append(job.id)

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.stop()
        if self._scheduler is not None:
            for job_id in self._job_ids:
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job(job_id)
        self._scheduler, self._job_ids = None, []


def _logged(func: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        try:
            func()
        except SQLAlchemyError as err:
            log.warning("supervision: %s skipped, state database unavailable (%s)", func.__name__,
                        type(err).__name__)
        except Exception:
            log.exception("supervision: %s failed", func.__name__)
    run.__name__ = getattr(func, "__name__", "job")
    return run
