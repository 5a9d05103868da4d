"""Faults around the alert book (contract section 7): SIGKILL between the InfluxDB write and the
book commit, and the state database (the suite's own PostgreSQL) stopped for 30 s mid-incident."""

from __future__ import annotations

import json
import time
from pathlib import Path

from service.stack import StackInfo
from store.state import StateStore
from tests.support.e2e.clients import Api, Devices
from tests.support.faults import FAMILY, INCIDENT, LOADED, RULE, Load, launched, stored_times
from tests.support.helpers import wait_until
from tests.support.pg import PgServer

OUTAGE_S = 30.0


def incident_alerts(api: Api) -> list[dict[str, object]]:
    return [a for a in api.alerts() if a["site"] == INCIDENT and a["rule"] == RULE]


def test_sigkill_between_the_influx_write_and_the_book_commit_loses_no_alert(
        stack: StackInfo, tmp_path: Path) -> None:
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    with launched(stack, tmp_path, state_url, test_fault="kill-before-book-commit") as (serve, api, name):
        devices = Devices(stack, name)
        stamp = devices.send(FAMILY, INCIDENT, "d1", {"vapor_lel": 30.0})
        devices.close()
        assert serve.proc is not None
        assert serve.proc.wait(20) == -9, f"the fault hook did not fire; log:\n{serve.log_tail()}"
        assert stored_times(stack, name, INCIDENT) == {stamp}  # the reading made it to InfluxDB
        book = StateStore(state_url)
        assert book.list_alerts() == []  # ... the alert did not make it to the book
        book.close()
        del serve.env["SAFEWATCH_TEST_FAULT"]
        serve.start()  # the broker redelivers the unacknowledged message
        wait_until(lambda: len(incident_alerts(api)) == 1, 15, "the alert after the restart")
        time.sleep(2)
        [alert] = incident_alerts(api)
        assert [e["type"] for e in api.alert(str(alert["id"]))["events"]] == ["fired"]
        assert stored_times(stack, name, INCIDENT) == {stamp}


def test_state_database_away_for_30s_during_an_incident(
        stack: StackInfo, pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    with launched(stack, tmp_path, pg_database) as (serve, api, name):
        load = Load(stack, name, rate=20)
        load.start()
        devices = Devices(stack, name)
        try:
            time.sleep(1.0)
            pg_server.stop()
            down_at = time.monotonic()
            wait_until(lambda: serve.health()[0] == 503, 10, "/health degraded")
            _code, body = serve.health()
            assert body["status"] == "degraded" and not body["components"]["state"]["ok"], body
            assert body["components"]["influxdb"]["ok"] and body["components"]["mqtt"]["ok"], body
            resp = api.request("GET", "/api/v1/alerts")  # the API says why instead of failing
            assert resp.status_code == 503 and "state database unavailable" in resp.json()["detail"], resp.text
            landed = len(stored_times(stack, name, LOADED))
            stamp = devices.send(FAMILY, INCIDENT, "d1", {"vapor_lel": 30.0})  # the incident starts
            wait_until(lambda: stamp in stored_times(stack, name, INCIDENT), 10, "the incident reading stored")
            wait_until(lambda: serve.health()[1]["components"]["state"].get("journal_depth", 0) >= 1, 10,
                       "the alert change journaled")
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            assert len(stored_times(stack, name, LOADED)) > landed + 10 * OUTAGE_S  # readings kept landing
            assert serve.health()[0] == 503
            pg_server.start()
            back_at = time.monotonic()
            wait_until(lambda: len(incident_alerts(api)) == 1, 15, "the alert after the database returned")
            appeared_s = time.monotonic() - back_at
            wait_until(lambda: serve.health()[0] == 200, 10, "/health ok again")
            time.sleep(2)
            [alert] = incident_alerts(api)
            assert [e["type"] for e in api.alert(str(alert["id"]))["events"]] == ["fired"]  # once
            assert appeared_s < 10, f"the alert took {appeared_s:.1f}s after the database returned"
            print(json.dumps({"state_outage_s": OUTAGE_S, "alert_after_return_s": round(appeared_s, 2)}))
        finally:
            pg_server.start()
            devices.close()
            load.stop()
        wait_until(lambda: set(load.acked) <= stored_times(stack, name, LOADED), 20, "every load reading stored")


def test_sigkill_while_alert_changes_wait_in_the_journal(
        stack: StackInfo, pg_server: PgServer, pg_database: str, tmp_path: Path) -> None:
    """The journal is the only copy of an acknowledged alert change: it must survive a SIGKILL."""
    with launched(stack, tmp_path, pg_database) as (serve, api, name):
        devices = Devices(stack, name)
        try:
            pg_server.stop()
            stamp = devices.send(FAMILY, INCIDENT, "d1", {"vapor_lel": 30.0})
            wait_until(lambda: serve.health()[1]["components"]["state"].get("journal_depth", 0) >= 1, 10,
                       "the alert change journaled")
            wait_until(lambda: serve.health()[1]["components"]["mqtt"].get("unacked", 1) == 0, 10,
                       "the message acknowledged to the broker")
            serve.kill()
        finally:
            pg_server.start()
            devices.close()
        serve.start()  # replays the journal before anything else touches the book
        wait_until(lambda: len(incident_alerts(api)) == 1, 15, "the journaled alert after the restart")
        time.sleep(2)
        [alert] = incident_alerts(api)
        assert [e["type"] for e in api.alert(str(alert["id"]))["events"]] == ["fired"]
        assert stamp in stored_times(stack, name, INCIDENT)
        assert serve.health()[1]["components"]["state"]["journal_depth"] == 0
