"""Ledger edge cases on SQLite and PostgreSQL: titles that must fit their column, and a hazard's
verification that must not close an alert whose condition came back meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, timedelta

import pytest
import yaml
from sqlalchemy.orm import Session

from alerting.service import AlertService
from domain.alerts import AlertState
from domain.district import parse_district
from domain.hazards import Hazard, HazardEvent, HazardEventType, HazardLevel, Plan
from domain.severity import Severity
from notify import Notice
from store.state import StateStore
from supervision.errors import HazardInvalid
from supervision.listing import TITLE_MAX, alert_title
from supervision.notices import HazardNotices
from supervision.service import SupervisionService
from tests.support.supervision import ADMIN, SITE_S1, YAML, Parts

LONG_NAME = "北京市西城区某某街道某某社区" * 25  # 350 characters: config names have no length limit


@pytest.fixture
def long_named(store: StateStore) -> Iterator[Parts]:
    data = yaml.safe_load(YAML)
    data["sites"][0]["name"] = LONG_NAME
    p = Parts.__new__(Parts)
    p.district, p.store = parse_district(data, "<long>"), store
    p.alerts = AlertService(p.district, store)
    p.sup = SupervisionService(p.district, store, close_alert=p.alerts.close)
    p.alerts.listeners.append(p.sup.on_changes)
    yield p
    p.close()


def test_an_alert_at_a_site_with_a_long_name_is_listed_with_a_title_that_fits(long_named: Parts) -> None:
    long_named.signal("S1", Severity.ORANGE)
    (h,) = long_named.store.list_hazards()  # PostgreSQL would refuse a 370-character title outright
    assert len(h.title) == TITLE_MAX and h.title.endswith("…: vapor (orange)") and h.title.startswith("北京市")
    assert long_named.sup.sweep() == []


def test_alert_title_keeps_short_names_whole_and_never_exceeds_the_column() -> None:
    assert alert_title("一号站", "vapor", "red") == "一号站: vapor (red)"
    assert len(alert_title("x" * 300, "r" * 300, "red")) == TITLE_MAX


def test_a_filed_title_longer_than_the_column_is_refused_naming_the_field(long_named: Parts) -> None:
    with pytest.raises(HazardInvalid, match="body title: at most 200 characters"):
        long_named.sup.ledger.file(ADMIN, "S1", "长" * 201, level=HazardLevel.GENERAL)


class AfterCommit:
    """A notifier that runs ``then`` once a hazard_closed event has committed (the moment between
    the hazard's commit and the closing of its alerts)."""

    def __init__(self, then: Callable[[], None]) -> None:
        self.then = then

    def plan(self, session: Session, event: HazardEvent, hazard: Hazard, departments: Sequence[str]) -> Notice:
        return HazardNotices("sup", UTC).notice(event, hazard, departments)  # no rows: only the moment matters

    def published(self, event: HazardEvent, notice: Notice) -> None:
        if event.type is HazardEventType.CLOSED:
            self.then()


def test_verifying_leaves_an_alert_that_reopened_meanwhile_open(store: StateStore) -> None:
    p = Parts(store)
    try:
        p.signal("S1", Severity.ORANGE)
        (h,) = store.list_hazards()
        p.sup.ledger.plan(SITE_S1, h.id, Plan("更换油气回收装置", "张三", "5万元", h.deadline - timedelta(hours=1),
                                             "停业预案"))
        p.sup.ledger.submit(SITE_S1, h.id, "done")
        p.signal("S1", None)  # resolved: the hazard may close
        p.sup.ledger.notifier = AfterCommit(lambda: p.signal("S1", Severity.ORANGE))  # ... and it comes back
        closed = p.sup.ledger.verify(ADMIN, h.id, True, "verified on site").hazard
        assert closed.state.value == "closed"
        alert = store.get_alert(h.alert_ids[0])
        assert alert is not None and alert.state is AlertState.OPEN, alert
        assert [e.type.value for e in alert.events][-2:] == ["resolved", "reopened"]
    finally:
        p.close()
