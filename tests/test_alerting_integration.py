"""AlertService end to end: the real engine, state database, InfluxDB writer, Mosquitto and HTTP receivers.

Readings enter through ``handle_batch`` (ingest's hand-off); notifications leave through real
webhooks and MQTT; a restart is a real SIGKILL of a child process holding the service.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

from alerting.lifecycle import TransitionError
from alerting.service import AlertService
from domain import District, parse_district
from domain.alerts import AlertState, EventType
from service.stack import StackInfo
from store.influx import InfluxClient, InfluxWriter
from store.state import StateStore
from tests.support.alerting import FAST, config, loopback, reading
from tests.support.helpers import influx_rows, wait_until
from tests.support.receiver import Receiver, receiver
from transport.mqtt import Message, MqttClient

REPO = Path(__file__).resolve().parents[1]


SECRETS = {"commerce": "c-secret", "office_n": "o-secret", "bureau": "b-secret", "fire": "f-secret",
           "police": "p-secret"}


def subscribe_all(state: StateStore, rec: Receiver) -> None:
    for dep, secret in SECRETS.items():
        state.create_subscription(department=dep, channel="webhook", url=rec.url(f"/{dep}"), secret=secret)


@dataclass
class Parts:
    district: District
    state: StateStore
    writer: InfluxWriter
    publisher: MqttClient
    influx: InfluxClient

    def service(self, **kw: object) -> AlertService:
        return AlertService(self.district, self.state, self.writer, self.publisher, CollectorRegistry(),
                            delivery=FAST, targets=loopback(self.district), **kw)  # type: ignore[arg-type]


@pytest.fixture
def parts(stack: StackInfo, influx_db: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Parts]:
    escalate_after = getattr(request, "param", "1h")
    district = parse_district(config(influx_db, escalate_after), "integration")
    state = StateStore(f"sqlite:///{tmp_path}/state.db")
    influx = InfluxClient(stack.influx_url, influx_db)
    writer = InfluxWriter(influx, tmp_path / "spool", flush_interval=0.05)
    writer.start()
    publisher = MqttClient(stack.mqtt_url, f"{influx_db}-alerts")
    publisher.connect(10)
    try:
        yield Parts(district, state, writer, publisher, influx)
    finally:
        publisher.close()
        writer.stop()
        influx.close()
        state.close()


class MqttWatch:
    """A real subscriber on the district's alert topics."""

    def __init__(self, stack: StackInfo, district: str) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._client = MqttClient(stack.mqtt_url, f"{district}-watch")
        self._client.subscribe([f"{district}/alerts/#", f"{district}/feeds/#"], 1, self._on)
        self._client.connect(10)

    def _on(self, m: Message) -> None:
        with self._lock:
            self.messages.append(m)

    def topics(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(m.topic, orjson.loads(m.payload)["type"]) for m in self.messages]

    def close(self) -> None:
        self._client.close()


def types(rec: Receiver, dep: str) -> list[str]:
    return [c.json["type"] for c in rec.received(f"/{dep}")]


@pytest.mark.parametrize("parts", ["2s"], indirect=True)
def test_every_transition_reaches_every_routed_department_in_order(parts: Parts, stack: StackInfo) -> None:
    name = parts.district.name
    watch = MqttWatch(stack, name)
    with receiver() as rec:
        subscribe_all(parts.state, rec)
        parts.state.create_subscription(department="fire", channel="mqtt", url=f"{name}/alerts/fire/feed")
        svc = parts.service(escalation_s=0.2)
        stream = svc.broadcaster.subscribe()
        svc.start()
        try:
            svc.handle_batch(reading(22))  # yellow: sector and street
            for dep in ("commerce", "office_n"):
                [call] = rec.wait_for(f"/{dep}", 1)
                assert call.json["type"] == "fired" and call.json["department"] == dep
                assert call.signed_by(SECRETS[dep])
                assert call.headers["x-safewatch-event-id"] == str(call.json["event_id"])
                alert = call.json["alert"]
                assert (alert["site"], alert["severity"], alert["state"]) == ("GS-1", "yellow", "open")
                assert alert["departments"] == ["commerce", "office_n"]
                assert alert["started_at"].endswith("+08:00")
            svc.handle_batch(reading(30))  # orange: bureau and fire join
            rec.wait_for("/fire", 1)
            rec.wait_for("/commerce", 3, timeout=10)  # the escalation after 2 s unacknowledged
            [alert] = svc.state.list_alerts()
            acked = svc.ack(alert.id, "commerce", "on site")
            assert acked.state is AlertState.ACKNOWLEDGED
            with pytest.raises(TransitionError):
                svc.ack(alert.id, "commerce")
            svc.handle_batch(reading(5))  # below 20 - 2: resolved
            svc.handle_batch(reading(23))  # back: reopened
            rec.wait_for("/commerce", 6)
            rec.wait_for("/police", 4)
            time.sleep(0.3)  # nothing more may arrive
            full = ["fired", "severity_changed", "escalated", "acknowledged", "resolved", "reopened"]
            assert types(rec, "commerce") == full
            assert types(rec, "office_n") == full
            assert types(rec, "bureau") == full[1:]
            assert types(rec, "fire") == full[1:]
            assert types(rec, "police") == full[2:]  # what escalation added
            assert len({c.json["event_id"] for c in rec.received("/commerce")}) == 6
            assert all(c.signed_by(SECRETS["police"]) for c in rec.received("/police"))

            # The same events on MQTT, per department and severity, and on the SSE broadcaster.
            wait_until(lambda: len(watch.topics()) >= 6 + 6 + 5 + 5 + 4 + 5, 10, "MQTT alert messages")
            feed = [t for topic, t in watch.topics() if topic == f"{name}/alerts/fire/feed"]
            assert feed == full[1:]  # the fire brigade's own MQTT subscription
            assert (f"{name}/alerts/commerce/yellow", "fired") in watch.topics()
            assert (f"{name}/alerts/fire/orange", "severity_changed") in watch.topics()
            assert (f"{name}/alerts/police/orange", "escalated") in watch.topics()
            notices = [stream.get(1.0) for _ in range(6)]
            assert [n.type for n in notices if n] == full

            # And as alert_event points in InfluxDB.
            parts.writer.flush(5)
            rows = influx_rows(stack, name, 'SELECT * FROM "alert_event" ORDER BY time')
            assert [r["event"] for r in rows] == full
            assert {r["alert_id"] for r in rows} == {alert.id}
            assert rows[0]["site"] == "GS-1" and rows[0]["rule"] == "vapor-level"
            assert rows[0]["metric"] == "vapor_lel" and rows[0]["value"] == 22
            assert [r["severity"] for r in rows][:2] == ["yellow", "orange"]
            text = svc.registry.get_sample_value("safewatch_alerts", {"state": "open"})
            assert text == 1
        finally:
            svc.stop()
            watch.close()


def test_restart_on_the_same_book_keeps_alerts_and_raises_no_duplicate(parts: Parts) -> None:
    with receiver() as rec:
        subscribe_all(parts.state, rec)
        first = parts.service()
        first.handle_batch(reading(22))
        first.handle_batch(reading(30, device="dev-2"))
        # No stop(): the process is simply gone. A new one starts on the same book.
        second = parts.service()
        second.start()
        try:
            second.handle_batch(reading(23))  # still yellow: nothing new
            second.handle_batch(reading(31, device="dev-2"))  # still orange: nothing new
            second.handle_batch(reading(60))  # red: a change of the same alert
            rec.wait_for("/commerce", 3)
            time.sleep(0.3)
            alerts = second.state.list_alerts()
            assert len(alerts) == 2
            assert sorted(a.severity.label for a in alerts) == ["orange", "red"]
            assert types(rec, "commerce") == ["fired", "fired", "severity_changed"]
        finally:
            second.stop()


CHILD = """
import sys, time
from tests.support.alerting import child_main
child_main(sys.argv[1])
"""


def test_sigkill_loses_no_notification_and_no_alert(parts: Parts, stack: StackInfo, tmp_path: Path) -> None:
    with receiver() as rec:
        subscribe_all(parts.state, rec)
        rec.script("/commerce", [500])  # down while the first process lives
        args = json.dumps({"db": parts.district.name, "state_url": parts.state.url,
                           "influx_url": stack.influx_url, "mqtt_url": stack.mqtt_url,
                           "spool": str(tmp_path / "child-spool")})
        child = subprocess.Popen([sys.executable, "-c", CHILD, args], cwd=REPO, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == b"ready", child.stderr.read() if child.stderr else b""
            wait_until(lambda: len(rec.received("/commerce", ok_only=False)) >= 2, 10, "failed attempts")
            rec.wait_for("/office_n", 2)  # a healthy receiver is served meanwhile
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        rec.script("/commerce", [200])  # the receiver recovers

        svc = parts.service()
        svc.start()
        try:
            calls = rec.wait_for("/commerce", 2, timeout=15)
            assert [c.json["type"] for c in calls] == ["fired", "severity_changed"]
            assert all(c.signed_by(SECRETS["commerce"]) for c in calls)
            svc.handle_batch(reading(31))  # the restored engine knows it is orange already
            svc.handle_batch(reading(5))
            rec.wait_for("/commerce", 3)
            time.sleep(0.3)
            assert types(rec, "commerce") == ["fired", "severity_changed", "resolved"]
            assert types(rec, "office_n") == ["fired", "severity_changed", "resolved"]
            [alert] = svc.state.list_alerts()
            full = svc.state.get_alert(alert.id)
            assert full is not None and full.state is AlertState.RESOLVED
            assert [e.type for e in full.events] == [EventType.FIRED, EventType.SEVERITY_CHANGED,
                                                     EventType.RESOLVED]
        finally:
            svc.stop()
