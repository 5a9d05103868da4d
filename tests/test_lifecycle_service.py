"""AlertService over the real engine and state database (no network): restart, orphans, bad signals."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from alerting.service import AlertService
from domain.alerts import AlertKey, AlertState, EventType, Signal
from domain.severity import Severity
from store.state import StateStore
from tests.support.lifecycle import batch, district


def service(store: StateStore, drop_rule: str | None = None) -> AlertService:
    return AlertService(district(drop_rule), store, None, None, CollectorRegistry())


def test_restart_restores_firing_alerts_without_duplicates(make_store: Callable[[], StateStore]) -> None:
    first = service(make_store())
    first.handle_batch(batch(vapor_lel=30, leak=1))
    first.handle_batch(batch("d2", vapor_lel=60))
    [acked] = [a for a in first.state.list_alerts() if a.rule == "leak"]
    first.ack(acked.id, "commerce")
    before = {a.id: a for a in first.state.list_alerts()}
    assert len(before) == 3

    second = service(make_store())  # the first one is gone without stop()
    second.handle_batch(batch(vapor_lel=31, leak=1))
    second.handle_batch(batch("d2", vapor_lel=61))
    after = {a.id: a for a in second.state.list_alerts()}
    assert after == before  # nothing fired again, nothing changed
    second.handle_batch(batch(vapor_lel=55))  # the same alert moves up
    second.handle_batch(batch(leak=0))  # the acknowledged one clears
    events = {a.rule + a.device: [e.type for e in second.state.get_alert(a.id).events]  # type: ignore[union-attr]
              for a in second.state.list_alerts()}
    assert events == {
        "vapord1": [EventType.FIRED, EventType.SEVERITY_CHANGED],
        "leakd1": [EventType.FIRED, EventType.ACKNOWLEDGED, EventType.RESOLVED],
        "vapord2": [EventType.FIRED],
    }
    assert second.latest("GS-1")["vapor_lel"][0] == 55


def test_alerts_of_a_removed_rule_are_resolved_at_start(store: StateStore) -> None:
    service(store).handle_batch(batch(vapor_lel=30, leak=1))
    service(store, drop_rule="leak")
    states = {a.rule: a.state for a in store.list_alerts()}
    assert states == {"vapor": AlertState.OPEN, "leak": AlertState.RESOLVED}
    [leak] = [a for a in store.list_alerts() if a.rule == "leak"]
    resolved = store.get_alert(leak.id).events[-1]  # type: ignore[union-attr]
    assert resolved.type is EventType.RESOLVED and "no longer in the config" in (resolved.note or "")


def test_a_signal_the_book_refuses_does_not_hold_back_the_others(store: StateStore) -> None:
    if store.backend == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths, so it accepts the over-long device id")
    svc = service(store)
    now = int(time.time() * 1000)
    bad, good = (Signal.fire(AlertKey("vapor", "GS-1", device, "vapor_lel"), family="gas_station",
                             kind="threshold", at_ms=now, severity=Severity.YELLOW, value=30.0)
                 for device in ("x" * 500, "ok"))
    changes = svc.apply_signals([bad, good])
    assert [c.alert.device for c in changes] == ["ok"]
    assert [a.device for a in store.list_alerts()] == ["ok"]
    svc.handle_batch(batch("later", vapor_lel=30))  # nothing stuck behind it
    assert len(store.list_alerts()) == 2


def test_metrics_show_alerts_by_state_and_outbox_depth(store: StateStore) -> None:
    store.create_subscription(department="commerce", channel="webhook", url="http://127.0.0.1:9/x")
    svc = service(store)
    svc.handle_batch(batch(vapor_lel=30, leak=1))
    sample = svc.registry.get_sample_value
    assert sample("safewatch_alerts", {"state": "open"}) == 2
    assert sample("safewatch_alerts", {"state": "closed"}) == 0
    assert sample("safewatch_outbox_depth") == 2  # not started: nothing delivered yet
