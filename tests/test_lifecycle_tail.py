"""The engine's transitions read back only the tail of their alert's events (``EVENTS_TAIL``,
all a notification carries); a person's action answers with all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerting.lifecycle import Lifecycle
from alerting.route import Router
from domain import District, Severity, load_district
from domain.alerts import AlertKey, EventType, Signal
from notify import EVENTS_TAIL, Planner
from store.state import StateStore

T0 = 1_764_300_000_000
KEY = AlertKey("vapor-level", "GS-001", "dev-1", "vapor_lel")


@pytest.fixture(scope="module")
def district() -> District:
    return load_district(Path(__file__).with_name("contract_example.yaml"))


def test_a_long_lived_alert_carries_its_last_events(district: District, store: StateStore) -> None:
    # Flapping well past the window: reopens are recorded (not all notified) with their events.
    lc = Lifecycle(district, store, Router(district), Planner(district.name, district.tz, mqtt_topics=True),
                   flap_reopens=1000)
    changes = []
    for n in range(EVENTS_TAIL + 5):
        at = T0 + n * 1000
        changes += lc.apply([Signal.fire(KEY, family="gas_station", kind="threshold", at_ms=at,
                                         severity=Severity.YELLOW, value=30.0, threshold=20.0, message="up")])
        changes += lc.apply([Signal.clear(KEY, family="gas_station", kind="threshold", at_ms=at + 500, value=5.0)])
    last = changes[-1]
    assert len(last.alert.events) == EVENTS_TAIL
    assert last.alert.events[-1] == last.event  # oldest first, ending with this transition
    assert [e.id for e in last.alert.events] == sorted(e.id for e in last.alert.events)
    everything = store.get_alert(last.alert.id)
    assert everything is not None and len(everything.events) == 2 * (EVENTS_TAIL + 5)
    assert last.alert.events == everything.events[-EVENTS_TAIL:]
    closed = lc.close(last.alert.id, "admin", "rectified", at_ms=T0 + 10**6)
    assert closed.event.type is EventType.CLOSED
    assert len(closed.alert.events) == 2 * (EVENTS_TAIL + 5) + 1
