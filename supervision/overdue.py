"""The overdue chain (逐级报告): unclosed hazards past their deadline are marked and reported up.

Each step of ``supervision.overdue`` (``after`` since the deadline, ``notify`` department ids;
``sector``/``street`` resolve per site) is taken once per hazard: the step's row in
``hazard_steps`` commits with the hazard change, its ``overdue`` event and the notifications,
so a restart or a second process running the job at the same moment can never repeat one
(the second insert fails and its transaction rolls back). Which process runs the job is the
scheduler's business (``service.jobs``: district-wide jobs run in one process at a time); the
chain takes no lock of its own, so there is one mechanism for that, and a run that overlaps
another anyway is still correct.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from domain.clock import now_ms
from domain.config import OverdueStep
from domain.durations import format_duration
from domain.hazards import Hazard, HazardEventType
from store.state.records import dt_to_ms, ms_to_dt
from supervision.ledger import Ledger, Move

log = logging.getLogger(__name__)
SCHEDULER = "scheduler"


class OverdueChain:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        d = ledger.district
        self.steps: list[OverdueStep] = d.config.supervision.overdue_chain(d.config.departments)

    def _resolve(self, step: OverdueStep, h: Hazard) -> tuple[str, ...]:
        d = self.ledger.district
        site = d.sites.get(h.site)
        out = []
        for name in step.notify:
            if name == "sector":
                out.append(h.sector)
            elif name == "street":
                out.append(d.street_office(site) if site is not None else "")
            else:
                out.append(name)
        return tuple(dict.fromkeys(x for x in out if x))

    def run(self, at_ms: int | None = None) -> list[Move]:
        """Marks and climbs every hazard due at ``at_ms`` (now); returns the moves made."""
        at = now_ms() if at_ms is None else at_ms
        state = self.ledger.state
        moves: list[Move] = []
        candidates = state.past_deadline(at)
        taken = state.steps_taken([h.id for h in candidates])
        for candidate in candidates:
            if candidate.overdue and not self._due(candidate, taken[candidate.id], at):
                continue  # marked and every due step taken: nothing to lock or write
            try:
                moves += self._hazard(candidate.id, at)
            except IntegrityError:
                # Another process took this step between our read and our insert.
                log.info("supervision: overdue step of hazard %s already taken elsewhere", candidate.id)
        self.ledger.published(moves)
        return moves

    def _due(self, h: Hazard, done: set[int], at: int) -> list[int]:
        deadline = dt_to_ms(h.deadline)
        return [i for i, st in enumerate(self.steps) if i not in done and at >= deadline + st.after * 1000]

    def _hazard(self, hazard_id: str, at: int) -> list[Move]:
        out: list[Move] = []
        with self.ledger.state.hazard_transaction() as tx:
            h = tx.get(hazard_id)
            if h is None or not h.is_open or dt_to_ms(h.deadline) >= at:
                return []
            deadline = dt_to_ms(h.deadline)
            due = self._due(h, tx.steps_done(h.id), at)
            late = format_duration(max(0, (at - deadline) // 1000))
            if not h.overdue:
                h = tx.update(replace(h, overdue=True, updated_at=ms_to_dt(at)))
                if not due:  # no step falls now: the mark itself is reported to the hazard's own
                    out.append(self.ledger.record(tx, h, HazardEventType.OVERDUE, at, SCHEDULER,
                                                   note=f"past its deadline by {late}"))
            for i in due:
                step = self.steps[i]
                tx.take_step(h.id, i, deadline, at)
                deps, added = _merge(h.departments, self._resolve(step, h))
                h = tx.update(replace(h, departments=deps, updated_at=ms_to_dt(at)))
                to = ", ".join(self._resolve(step, h))
                note = (f"overdue by {late}: step {i + 1} of {len(self.steps)} "
                        f"(after {format_duration(step.after)}) reported to {to}")
                out.append(self.ledger.record(tx, h, HazardEventType.OVERDUE, at, SCHEDULER, note=note,
                                               departments=added))
        return out


def _merge(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    added = tuple(d for d in new if d not in old)
    return old + added, added
