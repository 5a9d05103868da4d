"""Escalation: which steps are due (a table), and the scheduler pass on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import yaml

from alerting.escalation import Escalator, due_steps
from alerting.lifecycle import Lifecycle
from alerting.route import Router
from domain import District, Severity, parse_district
from domain.alerts import Alert, AlertKey, AlertState, EventType, Signal
from notify import Planner
from store.state import Entry, StateStore, Tracking
from store.state.records import ms_to_dt

CONFIG = """
district: esc
departments:
  - {id: bureau, name: Bureau, kind: comprehensive}
  - {id: commerce, name: Commerce, kind: sector}
  - {id: fire, name: Fire, kind: sector}
  - {id: office, name: Office, kind: territorial}
streets: [{id: main, name: Main street, office: office}]
sites: [{id: GS-1, name: Station, family: gas_station, street: main, sector: commerce}]
rules:
  - {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20, red: 50}}
routing:
  - {match: {}, notify: [sector]}
escalation:
  - {severity_at_least: yellow, unacknowledged_for: 15m, notify: [street, bureau]}
  - {severity_at_least: red, unacknowledged_for: 5m, notify: [fire]}
"""
MIN = 60_000
Y, R = Severity.YELLOW, Severity.RED


@pytest.fixture(scope="module")
def district() -> District:
    return parse_district(yaml.safe_load(CONFIG), "esc-test")


def entry(state: AlertState = AlertState.OPEN, severity: Severity = Y, reached: dict[int, int] | None = None,
          done: tuple[int, ...] = ()) -> Entry:
    a = Alert(id="7", rule="vapor", kind="threshold", site="GS-1", family="gas_station", device="d",
              metric="vapor_lel", severity=severity, state=state, value=30.0, threshold=20.0, message="",
              started_at=ms_to_dt(0), updated_at=ms_to_dt(0))
    return Entry(a, Tracking(reached_ms=reached if reached is not None else {1: 0, 2: 0},
                             escalations_done=done))


@pytest.mark.parametrize(("name", "e", "at_min", "expected"), [
    ("not yet", entry(), 14.99, []),
    ("yellow step at 15 min", entry(), 15, [0]),
    ("taken already", entry(done=(0,)), 60, []),
    ("acknowledged", entry(AlertState.ACKNOWLEDGED), 60, []),
    ("resolved", entry(AlertState.RESOLVED), 60, []),
    ("red step counts from the raise to red",
     entry(severity=R, reached={1: 0, 2: 0, 3: 12 * MIN, 4: 12 * MIN}), 16, [0]),
    ("both due", entry(severity=R, reached={1: 0, 2: 0, 3: 10 * MIN, 4: 10 * MIN}), 15, [0, 1]),
    ("red step after yellow was taken", entry(severity=R, reached={1: 0, 2: 0, 4: 10 * MIN}, done=(0,)),
     15, [1]),
    ("back down to yellow: the red step no longer applies",
     entry(severity=Y, reached={1: 0, 2: 0, 3: 1, 4: 1}, done=(0,)), 60, []),
    ("blue never reaches the yellow step", entry(severity=Severity.BLUE, reached={1: 0}), 60, []),
])
def test_due_steps(district: District, name: str, e: Entry, at_min: float, expected: list[int]) -> None:
    assert due_steps(district, [e], int(at_min * MIN)) == [("7", i) for i in expected]


def _signal(sev: Severity, at_ms: int, firing: bool = True) -> Signal:
    key = AlertKey("vapor", "GS-1", "d", "vapor_lel")
    if not firing:
        return Signal.clear(key, family="gas_station", kind="threshold", at_ms=at_ms, value=30.0)
    return Signal.fire(key, family="gas_station", kind="threshold", at_ms=at_ms, severity=sev, value=30.0)


def test_escalation_pass(district: District, store: StateStore) -> None:
    lc = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, mqtt_topics=True))
    esc = Escalator(district, store, lc)
    t0 = 1_764_300_000_000
    [fired] = lc.apply([_signal(Y, t0)])
    alert_id = fired.alert.id
    assert fired.alert.departments == ("commerce",)
    assert esc.run(t0 + 14 * MIN) == []
    [step0] = esc.run(t0 + 15 * MIN)
    assert step0.event.type is EventType.ESCALATED and step0.event.by == "scheduler"
    assert step0.event.note == "unacknowledged for 15m (escalation step 1)"
    assert step0.event.departments == ("office", "bureau")
    assert step0.alert.departments == ("commerce", "office", "bureau")
    # The escalation goes to everyone on the alert: the sector learns the bureau was called in.
    topics = {i.target.rsplit("/", 2)[1] for i in store.outbox_items(event_id=step0.event.id)}
    assert topics == {"commerce", "office", "bureau"}
    assert esc.run(t0 + 30 * MIN) == []  # once per step
    lc.apply([_signal(R, t0 + 31 * MIN)])
    assert esc.run(t0 + 35 * MIN) == []
    [step1] = esc.run(t0 + 36 * MIN)
    assert step1.event.departments == ("fire",)
    assert [e.type for e in store.get_alert(alert_id).events] == [  # type: ignore[union-attr]
        EventType.FIRED, EventType.ESCALATED, EventType.SEVERITY_CHANGED, EventType.ESCALATED]

    # Acknowledgement stops escalation for good (here: a second alert, acknowledged in time).
    lc.apply([_signal(R, t0 + 40 * MIN, firing=False)])
    lc.close(alert_id, "admin")
    [second] = lc.apply([_signal(R, t0 + 50 * MIN)])
    lc.acknowledge(second.alert.id, "commerce")
    assert esc.run(t0 + 120 * MIN) == []
    assert [e.type for e in store.get_alert(second.alert.id).events] == [  # type: ignore[union-attr]
        EventType.FIRED, EventType.ACKNOWLEDGED]


def test_reopened_alert_restarts_its_clock(district: District, store: StateStore) -> None:
    lc = Lifecycle(district, store, Router(district))
    esc = Escalator(district, store, lc)
    t0 = 1_764_300_000_000
    [fired] = lc.apply([_signal(Y, t0)])
    lc.apply([_signal(Y, t0 + 10 * MIN, firing=False)])
    lc.apply([_signal(Y, t0 + 20 * MIN)])
    assert esc.run(t0 + 34 * MIN) == []  # 14 min since the reopen
    assert [c.event.type for c in esc.run(t0 + 35 * MIN)] == [EventType.ESCALATED]
    assert store.get_alert(fired.alert.id).state is AlertState.OPEN  # type: ignore[union-attr]


def test_without_escalation_config_nothing_happens(store: StateStore) -> None:
    data = yaml.safe_load(CONFIG)
    data.pop("escalation")
    d = parse_district(data, "esc-test")
    lc = Lifecycle(d, store, Router(d))
    lc.apply([_signal(Y, 0)])
    assert Escalator(d, store, lc).run(10**12) == []
