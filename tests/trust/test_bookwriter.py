"""The book writer against a real PostgreSQL that goes away: journal, replay in order, once."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from alerting.journal import Journal
from alerting.service import AlertService
from domain.alerts import AlertKey, EventType, Signal
from domain.severity import Severity
from store.state import StateStore
from tests.support.helpers import wait_until
from tests.support.lifecycle import batch, district
from tests.support.pg import PgServer


def service(store: StateStore, journal: Journal | None) -> AlertService:
    svc = AlertService(district(), store, None, None, CollectorRegistry(), journal=journal)
    svc.start()
    return svc


def history(store: StateStore) -> dict[str, list[EventType]]:
    return {a.rule + a.device: [e.type for e in store.get_alert(a.id).events]  # type: ignore[union-attr]
            for a in store.list_alerts()}


def test_signals_journaled_while_the_database_is_down_are_replayed_in_order_once(
        pg_store: StateStore, pg_server: PgServer, tmp_path: Path) -> None:
    svc = service(pg_store, Journal(tmp_path / "journal"))
    try:
        first = svc.submit_batch(batch(vapor_lel=30))
        assert first is not None and first.wait(10) and not first.journaled
        pg_server.stop()
        tickets = [svc.submit_batch(b) for b in (batch(vapor_lel=60), batch(vapor_lel=5), batch("d2", leak=1))]
        for t in tickets:  # acknowledged without the database: durable in the journal
            assert t is not None and t.wait(10) and t.journaled
        assert svc.book.journal_depth >= 1
        later = svc.submit_batch(batch(vapor_lel=25))  # queued behind the journal, never ahead of it
        assert later is not None and later.wait(10) and later.journaled
        pg_server.start()
        wait_until(lambda: svc.book.journal_depth == 0, 15, "journal replayed")
    finally:
        svc.stop()
    assert history(pg_store) == {
        "vapord1": [EventType.FIRED, EventType.SEVERITY_CHANGED, EventType.RESOLVED, EventType.REOPENED],
        "leakd2": [EventType.FIRED],
    }
    service(pg_store, Journal(tmp_path / "journal")).stop()  # a restart replays nothing again
    assert len(history(pg_store)["vapord1"]) == 4


def test_without_a_journal_the_ticket_waits_for_the_database(pg_store: StateStore, pg_server: PgServer) -> None:
    svc = service(pg_store, None)
    try:
        pg_server.stop()
        ticket = svc.submit_batch(batch(vapor_lel=30))
        assert ticket is not None and not ticket.wait(2)  # not durable: its messages stay unacknowledged
        pg_server.start()
        assert ticket.wait(15) and not ticket.journaled
    finally:
        svc.stop()
    assert history(pg_store) == {"vapord1": [EventType.FIRED]}


def test_an_entry_a_crash_may_have_committed_is_not_applied_twice(pg_store: StateStore, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    key = AlertKey("vapor", "GS-1", "d1", "vapor_lel")
    fire = Signal.fire(key, family="gas_station", kind="threshold", at_ms=now, severity=Severity.YELLOW,
                       value=30.0, threshold=20.0)
    clear = Signal.clear(key, family="gas_station", kind="threshold", at_ms=now + 1, value=5.0)
    journal = Journal(tmp_path / "journal")
    journal.append([("*", [fire, clear])])
    journal.close()
    # The killed process had committed the entry but not yet written its applied marker.
    svc = service(pg_store, None)
    svc.apply_signals([fire, clear])
    svc.stop()
    service(pg_store, Journal(tmp_path / "journal")).stop()  # replays the uncertain entry, guarded
    assert history(pg_store) == {"vapord1": [EventType.FIRED, EventType.RESOLVED]}  # no reopen
