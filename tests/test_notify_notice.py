"""Notices: one rendering per event, spliced per department byte for byte, a bounded tail of events
(alerts' and hazards'), typed targets from an outbox row's columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from domain.alerts import Alert, AlertEvent, AlertState, EventType
from domain.hazards import Hazard, HazardEvent, HazardEventType, HazardLevel, HazardSource, HazardState
from domain.severity import Severity
from notify import EVENTS_TAIL, Notice, SubscriptionTarget, TopicTarget, alert_json, alert_notice
from notify.notice import render, target_of
from store.state.records import Subscription
from supervision.json import hazard_json
from supervision.notices import HazardNotices

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def alert(events: int) -> Alert:
    evs = tuple(AlertEvent(i + 1, "7", EventType.SEVERITY_CHANGED if i else EventType.FIRED,
                           NOW + timedelta(seconds=i), Severity.RED) for i in range(events))
    return Alert(id="7", rule="r", kind="threshold", site="S1", family="gas_station", device="d", metric="m",
                 severity=Severity.RED, state=AlertState.OPEN, value=1.0, threshold=0.5, message="m",
                 started_at=NOW, updated_at=NOW, departments=("commerce", "fire"), street="main", events=evs)


@pytest.mark.parametrize("department", ["commerce", None, 'qu"ote'])
def test_the_splice_is_byte_for_byte_the_whole_body(department: str | None) -> None:
    a = alert(3)
    n = alert_notice(a.events[-1], a, TZ)
    whole = {"event_id": 3, "type": "severity_changed", "department": department, "alert": alert_json(a, TZ)}
    assert n.payload(department) == orjson.dumps(whole)


@pytest.mark.parametrize("body", [
    {}, {"type": "x"}, {"event_id": 1}, {"event_id": "hazard-1", "type": "t", "hazard": {}}])
def test_render_puts_the_department_after_type_in_any_body(body: dict[str, object]) -> None:
    got = orjson.loads(render(body).for_department("d"))
    assert got == body | {"department": "d"}
    keys = list(got)
    assert keys.index("department") == (keys.index("type") + 1 if "type" in body else len(keys) - 1)


def test_a_notification_carries_only_the_last_events_of_a_long_alert() -> None:
    a = alert(EVENTS_TAIL + 15)
    body = orjson.loads(alert_notice(a.events[-1], a, TZ).payload("fire"))
    ids = [e["id"] for e in body["alert"]["events"]]
    assert ids == list(range(16, EVENTS_TAIL + 16))
    assert len(alert_json(a, TZ, tail=None)["events"]) == EVENTS_TAIL + 15


def test_targets_are_typed_and_keyed() -> None:
    # From a row's columns (its kind, with its subscription id or its topic); the key is only compared.
    assert target_of("subscription", "4", None) == SubscriptionTarget("4")
    assert target_of("topic", None, "d/alerts/fire/red") == TopicTarget("d/alerts/fire/red")
    assert SubscriptionTarget("4").key == "sub:4" and TopicTarget("x/y").kind == "topic"
    with pytest.raises(ValueError, match="target_kind='topic' subscription_id='4' topic=None"):
        target_of("topic", "4", None)


def sub(min_severity: Severity, **filters: tuple[str, ...]) -> Subscription:
    return Subscription("1", "commerce", "webhook", "https://h/x", "", min_severity, filters.get("families", ()),
                        filters.get("streets", ()), filters.get("sites", ()), NOW)


def test_a_hazard_notice_ignores_min_severity_but_not_the_filters() -> None:
    hazard = Notice(subject="hazard", subject_id="5", event_id="hazard-9", type="hazard_listed",
                    body={"event_id": "hazard-9", "type": "hazard_listed", "hazard": {"id": "5"}},
                    departments=("commerce",), site="S1", family="gas_station", street="main")
    assert hazard.event_key == "hazard-9"
    assert hazard.wanted_by(sub(Severity.RED))
    assert not hazard.wanted_by(sub(Severity.BLUE, sites=("S2",)))
    assert hazard.wanted_by(sub(Severity.BLUE, families=("gas_station",), streets=("main",)))
    with pytest.raises(ValueError, match="subject='site'"):
        Notice(subject="site", subject_id="5", event_id="x", type="t", body={}, departments=(),  # type: ignore[arg-type]
               site="S1", family="f", street="s")


def hazard(events: int) -> Hazard:
    evs = tuple(HazardEvent(i + 1, "5", HazardEventType.LISTED if i == 0 else HazardEventType.PROGRESS,
                            NOW + timedelta(minutes=i), "someone", note=f"n{i}") for i in range(events))
    return Hazard(id="5", site="S1", family="gas_station", street="main", sector="commerce", title="t",
                  description="", level=HazardLevel.GENERAL, source=HazardSource.INSPECTION,
                  state=HazardState.RECTIFYING, listed_at=NOW, deadline=NOW + timedelta(days=7),
                  departments=("commerce", "street_main"), events=evs)


def test_a_hazard_notification_carries_only_the_last_events_the_api_all() -> None:
    h = hazard(EVENTS_TAIL + 7)
    notice = HazardNotices("d", TZ).notice(h.events[-1], h)
    body = orjson.loads(notice.payload("commerce"))
    assert [e["id"] for e in body["hazard"]["events"]] == list(range(8, EVENTS_TAIL + 8))
    assert body["hazard"]["listed_at"] == "2025-01-01T08:00:00.000+08:00"  # notify's rfc3339, the zone's offset
    assert len(hazard_json(h, TZ)["events"]) == EVENTS_TAIL + 7  # GET /hazards/{id}: every event
