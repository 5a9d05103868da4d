"""The alert lifecycle on SQLite and PostgreSQL: signals and actions → states, events, outbox rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from alerting.lifecycle import AlertNotFound, Change, Lifecycle, TransitionError
from alerting.route import Router
from domain import District, Severity, load_district
from domain.alerts import AlertKey, AlertState, EventType, Signal
from notify import Planner, SubscriptionTarget, TopicTarget
from store.state import StateStore

T0 = 1_764_300_000_000
KEY = AlertKey("vapor-level", "GS-001", "dev-1", "vapor_lel")
Y, OR, R = Severity.YELLOW, Severity.ORANGE, Severity.RED


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(Path(__file__).with_name("contract_example.yaml"))


def lifecycle(district: District, store: StateStore, **kw: float) -> Lifecycle:
    planner = Planner(district.name, district.tz, mqtt_topics=True)
    return Lifecycle(district, store, Router(district), planner, **kw)  # type: ignore[arg-type]


def fire(sev: Severity, at_s: float, value: float = 30.0, key: AlertKey = KEY) -> Signal:
    return Signal.fire(key, family="gas_station", kind="threshold", at_ms=T0 + int(at_s * 1000), severity=sev,
                       value=value, threshold=20.0, message=f"vapour {value}")


def clear(at_s: float, key: AlertKey = KEY) -> Signal:
    return Signal.clear(key, family="gas_station", kind="threshold", at_ms=T0 + int(at_s * 1000), value=5.0)


# (step, expected event or None, state after, severity after, departments after)
Step = tuple[Callable[[Lifecycle, str], Change | None], EventType | None, AlertState, Severity, tuple[str, ...]]
BASE = ("commerce", "street_jinrongjie")
HIGH = (*BASE, "safety_bureau", "fire")


def sig(s: Signal) -> Callable[[Lifecycle, str], Change | None]:
    def run(lc: Lifecycle, _alert_id: str) -> Change | None:
        changes = lc.apply([s])
        return changes[0] if changes else None
    return run


def ack(lc: Lifecycle, alert_id: str) -> Change:
    return lc.acknowledge(alert_id, "commerce", "on my way", at_ms=T0 + 1)


def close(lc: Lifecycle, alert_id: str) -> Change:
    return lc.close(alert_id, "admin", "rectified", at_ms=T0 + 2)


SCENARIO: list[Step] = [
    (sig(fire(Y, 0)), EventType.FIRED, AlertState.OPEN, Y, BASE),
    (sig(fire(Y, 1)), None, AlertState.OPEN, Y, BASE),  # same severity again: nothing to record
    (sig(fire(R, 2, 55)), EventType.SEVERITY_CHANGED, AlertState.OPEN, R, HIGH),
    (sig(fire(Y, 3)), EventType.SEVERITY_CHANGED, AlertState.OPEN, Y, HIGH),  # nobody is taken off
    (ack, EventType.ACKNOWLEDGED, AlertState.ACKNOWLEDGED, Y, HIGH),
    (sig(fire(OR, 4)), EventType.SEVERITY_CHANGED, AlertState.ACKNOWLEDGED, OR, HIGH),
    (sig(clear(5)), EventType.RESOLVED, AlertState.RESOLVED, OR, HIGH),
    (sig(clear(6)), None, AlertState.RESOLVED, OR, HIGH),
    (sig(fire(Y, 7)), EventType.REOPENED, AlertState.OPEN, Y, HIGH),
    (sig(clear(8)), EventType.RESOLVED, AlertState.RESOLVED, Y, HIGH),
    (close, EventType.CLOSED, AlertState.CLOSED, Y, HIGH),
    (sig(clear(9)), None, AlertState.CLOSED, Y, HIGH),
]


def test_scenario(district: District, store: StateStore) -> None:
    lc = lifecycle(district, store)
    alert_id = ""
    for i, (step, event, state, severity, departments) in enumerate(SCENARIO):
        change = step(lc, alert_id)
        if i == 0:
            assert change is not None
            alert_id = change.alert.id
        assert (change.event.type if change else None) is event, i
        got = store.get_alert(alert_id)
        assert got is not None
        assert (got.state, got.severity, got.departments) == (state, severity, departments), i
        if change is not None:
            assert change.alert == got, i
    got = store.get_alert(alert_id)
    assert got is not None
    types = [e.type for e in got.events]
    assert types == [s[1] for s in SCENARIO if s[1] is not None]
    events = {e.type: e for e in got.events}
    assert events[EventType.FIRED].departments == BASE
    assert events[EventType.FIRED].by == "engine" and events[EventType.FIRED].value == 30.0
    assert got.events[1].departments == ("safety_bureau", "fire")  # what the raise to red added
    assert (events[EventType.ACKNOWLEDGED].by, events[EventType.ACKNOWLEDGED].note) == ("commerce", "on my way")
    assert (events[EventType.CLOSED].by, events[EventType.CLOSED].note) == ("admin", "rectified")
    assert got.closed_at is not None and got.resolved_at is not None
    assert got.started_at.timestamp() * 1000 == T0

    # Closed: the next crossing is a new alert.
    [again] = lc.apply([fire(Y, 20)])
    assert again.event.type is EventType.FIRED and again.alert.id != alert_id


def test_actions_refused_by_state(district: District, store: StateStore) -> None:
    lc = lifecycle(district, store)
    [c] = lc.apply([fire(Y, 0)])
    lc.acknowledge(c.alert.id, "commerce")
    with pytest.raises(TransitionError, match="is acknowledged: cannot acknowledge"):
        lc.acknowledge(c.alert.id, "commerce")
    lc.apply([clear(1)])
    with pytest.raises(TransitionError, match="is resolved"):
        lc.acknowledge(c.alert.id, "commerce")
    lc.close(c.alert.id, "admin")
    with pytest.raises(TransitionError, match="is closed: cannot close"):
        lc.close(c.alert.id, "admin")
    for bad in ("999999", "x", ""):
        with pytest.raises(AlertNotFound):
            lc.acknowledge(bad, "admin")
        with pytest.raises(AlertNotFound):
            lc.close(bad, "admin")
    events = store.get_alert(c.alert.id).events  # type: ignore[union-attr]
    assert [e.type for e in events] == [EventType.FIRED, EventType.ACKNOWLEDGED, EventType.RESOLVED,
                                        EventType.CLOSED]


def test_one_batch_with_several_keys_and_transitions(district: District, store: StateStore) -> None:
    other = AlertKey("vapor-level", "GS-001", "dev-2", "vapor_lel")
    lc = lifecycle(district, store)
    changes = lc.apply([fire(Y, 0), fire(R, 0, key=other), fire(OR, 1), clear(2, key=other), clear(3)])
    assert [(c.alert.device, c.event.type) for c in changes] == [
        ("dev-1", EventType.FIRED), ("dev-2", EventType.FIRED), ("dev-1", EventType.SEVERITY_CHANGED),
        ("dev-2", EventType.RESOLVED), ("dev-1", EventType.RESOLVED)]
    assert store.count_alerts_by_state()["resolved"] == 2


def test_outbox_rows_follow_departments_and_subscription_filters(district: District, store: StateStore) -> None:
    subs = {
        "all": store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/a",
                                         secret="s"),
        "orange+": store.create_subscription(department="commerce", channel="webhook",
                                             url="http://127.0.0.1:9/b", min_severity=OR),
        "other site": store.create_subscription(department="commerce", channel="webhook",
                                                url="http://127.0.0.1:9/c", sites=["CV-001"]),
        "street": store.create_subscription(department="street_jinrongjie", channel="webhook",
                                            url="http://127.0.0.1:9/d", streets=["jinrongjie"],
                                            families=["gas_station"]),
        "fire mqtt": store.create_subscription(department="fire", channel="mqtt", url="fire/alerts"),
    }
    lc = lifecycle(district, store)
    [fired] = lc.apply([fire(Y, 0)])
    [raised] = lc.apply([fire(R, 1)])

    def targets(event_id: int) -> set[str]:
        return {i.target for i in store.outbox_items(event_id=event_id)}

    def sub(name: str) -> str:
        return SubscriptionTarget(subs[name].id).key

    def topic(rest: str) -> str:
        return TopicTarget(f"{district.name}/alerts/{rest}").key

    assert targets(fired.event.id) == {
        sub("all"), sub("street"), topic("commerce/yellow"), topic("street_jinrongjie/yellow")}
    # The raise to red reaches everyone now on the alert, the new departments included.
    assert targets(raised.event.id) == {
        sub("all"), sub("orange+"), sub("street"), sub("fire mqtt"),
        topic("commerce/red"), topic("street_jinrongjie/red"), topic("safety_bureau/red"), topic("fire/red")}
    rows = store.outbox_items(event_id=raised.event.id)
    # Each row's typed receiver is in its columns: the subscription's id, or the topic itself.
    assert {r.topic for r in rows if r.target_kind == "topic"} == {
        f"{district.name}/alerts/{d}/red" for d in ("commerce", "street_jinrongjie", "safety_bureau", "fire")}
    assert {r.subscription_id for r in rows if r.target_kind == "subscription"} == {
        subs[n].id for n in ("all", "orange+", "street", "fire mqtt")}
    body = orjson.loads(next(r for r in rows if r.target == sub("all")).payload)
    assert body["event_id"] == raised.event.id and body["type"] == "severity_changed"
    assert body["department"] == "commerce"
    assert body["alert"]["severity"] == "red" and body["alert"]["id"] == raised.alert.id
    assert body["alert"]["started_at"].endswith("+08:00")  # the district's zone, with its offset
    assert [e["type"] for e in body["alert"]["events"]] == ["fired", "severity_changed"]
    fire_row = next(r for r in rows if r.subscription_id == subs["fire mqtt"].id)
    assert (fire_row.channel, fire_row.department) == ("mqtt", "fire")
    assert orjson.loads(fire_row.payload)["department"] == "fire"


def test_flapping_throttles_then_settles(district: District, store: StateStore) -> None:
    lc = lifecycle(district, store, flap_reopens=2, flap_window_s=60)
    seq = [fire(Y, 0), clear(1), fire(Y, 2), clear(3), fire(Y, 4), clear(5), fire(Y, 6), clear(7)]
    changes = [c for s in seq for c in lc.apply([s])]
    got = [(c.event.type.value, c.alert.flapping, c.notified) for c in changes]
    assert got == [
        ("fired", False, True), ("resolved", False, True),
        ("reopened", False, True), ("resolved", False, True),
        ("reopened", True, True),  # the reopen that starts flapping is told, marked
        ("resolved", True, False), ("reopened", True, False), ("resolved", True, False),
    ]
    alert_id = changes[0].alert.id
    for c in changes:
        assert bool(store.outbox_items(event_id=c.event.id)) is c.notified
    # Still inside the window of the last reopen: nothing to settle.
    assert lc.settle_flapping(T0 + 30_000) == []
    # A whole window without reopen: the mark goes and the held-back resolution is sent.
    [settled] = lc.settle_flapping(T0 + 6_000 + 61_000)
    assert settled.event.id == changes[-1].event.id and settled.alert.flapping is False
    assert store.outbox_items(event_id=settled.event.id)
    assert store.get_alert(alert_id).flapping is False  # type: ignore[union-attr]
    assert lc.settle_flapping(T0 + 200_000) == []
    # A reopen long after is an ordinary, notified one.
    [late] = lc.apply([fire(Y, 500)])
    assert (late.event.type, late.notified, late.alert.flapping) == (EventType.REOPENED, True, False)


def test_concurrent_processes_share_one_live_alert(district: District, make_store) -> None:
    """Two processes on one database (PostgreSQL in production) record one alert per key."""
    a, b = lifecycle(district, make_store()), lifecycle(district, make_store())
    [first] = a.apply([fire(Y, 0)])
    assert b.apply([fire(Y, 0)]) == []  # the second sees the live alert at that severity
    [raised] = b.apply([fire(R, 1)])
    assert raised.alert.id == first.alert.id
    assert len(make_store().list_alerts()) == 1
