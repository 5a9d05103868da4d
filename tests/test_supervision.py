"""Supervision over the real alert book, on SQLite and PostgreSQL: listing from alerts (hook and
catch-up sweep), the overdue chain with a moved clock (each step once, also across two
processes' stores), and the credit score's arithmetic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from domain.clock import now_ms
from domain.hazards import HazardLevel, HazardSource, HazardState, Plan
from domain.severity import Severity
from store.state import StateStore
from store.state.records import dt_to_ms
from supervision.credit import credit_scores, overdue_days
from supervision.errors import HazardConflict
from tests.support.supervision import ADMIN, DAY, SITE_S1, Parts


@pytest.fixture
def parts(store: StateStore) -> Iterator[Parts]:
    p = Parts(store)
    yield p
    p.close()


def test_listing_from_alerts_general_major_and_join(parts: Parts) -> None:
    parts.signal("S1", Severity.YELLOW)
    assert parts.store.list_hazards() == []  # below supervision.list
    parts.signal("S1", Severity.ORANGE)  # rises to orange: listed, general
    (h,) = parts.store.list_hazards()
    assert (h.level, h.source, h.state, h.rule) == (HazardLevel.GENERAL, HazardSource.ALERT, HazardState.LISTED,
                                                    "vapor")
    assert dt_to_ms(h.deadline) - dt_to_ms(h.listed_at) == 7 * DAY
    assert {"trade", "office_n", "bureau"} <= set(h.departments)
    parts.signal("S1", Severity.ORANGE, device="d2")  # same rule, same site, another alert: joins
    (h2,) = parts.store.list_hazards()
    assert len(h2.alert_ids) == 2 and h2.id == h.id
    parts.signal("S2", Severity.RED)  # red at another site: a major hazard of its own
    major = parts.store.list_hazards()[0]
    assert (major.site, major.level) == ("S2", HazardLevel.MAJOR)
    assert dt_to_ms(major.deadline) - dt_to_ms(major.listed_at) == DAY
    parts.signal("S1", Severity.RED)  # an alert of the S1 hazard turns red: the hazard is raised
    raised = parts.store.get_hazard(h.id)
    assert raised is not None and raised.level is HazardLevel.MAJOR
    assert [e.type.value for e in raised.events] == ["listed", "joined", "raised"]


def test_a_crash_between_alert_commit_and_listing_is_repaired_by_the_sweep(store: StateStore) -> None:
    crashed = Parts(store, hook=False)  # the alert commits, the listing never happens
    try:
        crashed.signal("S1", Severity.ORANGE)
        assert store.list_hazards() == []
        (moved,) = crashed.sup.sweep()
        assert moved.hazard.source is HazardSource.ALERT
        assert crashed.sup.sweep() == []  # idempotent
        assert len(store.list_hazards()) == 1
    finally:
        crashed.close()


def test_closing_needs_quiet_alerts_and_closes_resolved_ones(parts: Parts) -> None:
    parts.signal("S1", Severity.ORANGE)
    (h,) = parts.store.list_hazards()
    plan_deadline = h.deadline - timedelta(hours=1)
    parts.sup.ledger.plan(SITE_S1, h.id, Plan("更换油气回收装置", "张三", "5万元", plan_deadline, "停业预案"))
    parts.sup.ledger.submit(SITE_S1, h.id, "done")
    with pytest.raises(HazardConflict, match="still open"):
        parts.sup.ledger.verify(ADMIN, h.id, True, "ok")
    parts.signal("S1", None)  # the alert resolves
    closed = parts.sup.ledger.verify(ADMIN, h.id, True, "verified on site").hazard
    assert closed.state is HazardState.CLOSED
    alert = parts.store.get_alert(h.alert_ids[0])
    assert alert is not None and alert.state.value == "closed"


def _overdue_types(store: StateStore, hazard_id: str) -> list[str]:
    h = store.get_hazard(hazard_id)
    assert h is not None
    return [e.note or "" for e in h.events if e.type.value == "overdue"]


def test_overdue_chain_each_step_once_across_two_stores(make_store: Callable[[], StateStore]) -> None:
    a, b = Parts(make_store()), Parts(make_store())
    try:
        h = a.sup.ledger.file(SITE_S1, "S1", "储罐区灭火器过期", level=HazardLevel.GENERAL).hazard
        deadline = dt_to_ms(h.deadline)
        assert a.sup.run_overdue(deadline - 1) == []  # not yet due
        first = a.sup.run_overdue(deadline + 1000)
        assert [m.event.type.value for m in first] == ["overdue"]
        assert b.sup.run_overdue(deadline + 2000) == []  # step 1 is taken: the other process skips it
        assert a.store.get_hazard(h.id).overdue  # type: ignore[union-attr]
        second = b.sup.run_overdue(deadline + DAY + 1)
        assert [m.event.departments for m in second] == [("bureau",)]
        assert a.sup.run_overdue(deadline + DAY + 2) == []
        both = [*a.sup.run_overdue(deadline + 3 * DAY + 5), *b.sup.run_overdue(deadline + 3 * DAY + 5)]
        assert [m.event.departments for m in both] == [("police",)]
        assert len(_overdue_types(a.store, h.id)) == 3
        final = a.store.get_hazard(h.id)
        assert final is not None and {"bureau", "police"} <= set(final.departments)
    finally:
        a.close()
        b.close()


def test_overdue_skips_steps_already_past_in_one_run(parts: Parts) -> None:
    h = parts.sup.ledger.file(SITE_S1, "S1", "t").hazard
    moves = parts.sup.run_overdue(dt_to_ms(h.deadline) + 5 * DAY)  # a process down for days: all three steps
    assert len(moves) == 3 and parts.sup.run_overdue(dt_to_ms(h.deadline) + 6 * DAY) == []


def test_credit_worked_example(parts: Parts) -> None:
    """S1 over 30 days: 1 red and 1 yellow alert (5 + 1), one major hazard listed from the red alert
    (15), 3 started days past its 1-day deadline (3 × 2), one rejected review (5): 100 − 32 = 68, C."""
    t0 = now_ms() - 10 * DAY
    parts.signal("S1", Severity.YELLOW, device="d9", at=t0)
    parts.signal("S1", Severity.RED, at=t0)
    (h,) = parts.store.list_hazards()
    parts.sup.ledger.plan(ADMIN, h.id, Plan("m", "o", "f", h.deadline, "c"), at_ms=t0 + 1000)
    parts.sup.ledger.submit(ADMIN, h.id, at_ms=t0 + 2000)
    parts.sup.ledger.verify(ADMIN, h.id, False, "证据不足", at_ms=t0 + 3000)
    parts.signal("S1", None, at=t0 + 4000)
    parts.sup.ledger.submit(ADMIN, h.id, at_ms=t0 + 5000)
    closed_at = dt_to_ms(h.deadline) + 2 * DAY + 3600_000  # 2 days and an hour late: 3 started days
    parts.sup.ledger.verify(ADMIN, h.id, True, "ok", at_ms=closed_at)
    scores = {c.site: c for c in credit_scores(parts.district, parts.store)}
    s1 = scores["S1"]
    points = {f.name: f.points for f in s1.factors}
    assert points["alerts_red"] == -5 and points["alerts_yellow"] == -1
    assert points["hazards_major"] == -15 and points["overdue_days"] == -6 and points["rejected_reviews"] == -5
    assert (s1.score, s1.grade, s1.window) == (68.0, "C", "30d")
    assert (scores["S2"].score, scores["S2"].grade) == (100.0, "A")
    assert next(iter(scores)) == "S1"  # worst first
    closed = parts.store.get_hazard(h.id)
    assert closed is not None and overdue_days(closed, 0, now_ms()) == 3
