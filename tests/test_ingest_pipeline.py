"""Ingest in-process against the session's real Mosquitto and InfluxDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from domain import Batch, District, parse_district
from ingest import Ingest
from service.stack import StackInfo
from store.deadletters import DeadLetters
from store.influx import InfluxClient, InfluxWriter
from tests.support.helpers import influx_rows, wait_until
from transport.mqtt import MqttClient


def make_district(name: str) -> District:
    return parse_district(yaml.safe_load(f"""
district: {name}
departments: [{{id: sec, name: Sector, kind: sector}}, {{id: office1, name: Office, kind: territorial}}]
streets: [{{id: st1, name: Street 1, office: office1}}, {{id: st2, name: Street 2, office: office1}}]
sites:
  - {{id: GS-1, name: G, family: gas_station, street: st1, sector: sec}}
  - {{id: UG-1, name: U, family: underground, street: st2, sector: sec}}
"""), "inline")


@dataclass
class Rig:
    district: District
    stack: StackInfo
    ingest: Ingest
    writer: InfluxWriter
    mqtt: MqttClient
    registry: CollectorRegistry
    dead: DeadLetters
    batches: list[Batch] = field(default_factory=list)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def rows(self, q: str) -> list[dict[str, Any]]:
        return influx_rows(self.stack, self.district.name, q)

    def dead_letters(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.dead.path.read_text().splitlines()]


def start_rig(stack: StackInfo, district: District, tmp: Path, client_id: str, *, start_writer: bool = True,
              on_batch=None) -> Rig:
    registry = CollectorRegistry()
    influx = InfluxClient(stack.influx_url, district.name)
    influx.ensure_database()
    dead = DeadLetters(tmp / "dead")
    writer = InfluxWriter(influx, tmp / "spool", flush_interval=0.05, registry=registry, dead_letters=dead)
    if start_writer:
        writer.start()
    mqtt = MqttClient(stack.mqtt_url, client_id, clean_session=False, manual_ack=True)
    rig = Rig(district, stack, None, writer, mqtt, registry, dead)  # type: ignore[arg-type]
    rig.ingest = Ingest(district, mqtt, writer, on_batch or rig.batches.append, dead, registry)
    rig.ingest.start()
    mqtt.connect(10)
    return rig


def stop_rig(rig: Rig) -> None:
    rig.ingest.stop(10)
    rig.writer.stop(10)
    rig.mqtt.close()


@pytest.fixture
def publisher(stack: StackInfo, district: str) -> Iterator[MqttClient]:
    c = MqttClient(stack.mqtt_url, f"{district}-pub")
    c.connect(10)
    yield c
    c.close()


@pytest.fixture
def rig(stack: StackInfo, district: str, tmp_path: Path) -> Iterator[Rig]:
    r = start_rig(stack, make_district(district), tmp_path, f"{district}-ingest")
    yield r
    stop_rig(r)


def test_n_messages_give_n_points_with_tags_and_fields(rig: Rig, publisher: MqttClient) -> None:
    d = rig.district.name
    n = 2000
    for i in range(n):
        body = {"ts": 1_764_300_000_000 + i, "values": {"vapor_lel": i % 100, "tank_temp_c": 20.5}}
        publisher.publish(f"{d}/gas_station/GS-1/dev{i % 4}/telemetry", json.dumps(body))
    publisher.publish(f"{d}/underground/UG-1/u1/telemetry", b'{"ts": 1764300000000, "values": {"co_ppm": 7}}',
                      wait=True)
    wait_until(lambda: rig.metric("safewatch_readings_accepted_total") == n + 1, 30, "all readings accepted")
    wait_until(lambda: rig.ingest.unacked == 0, 10, "all messages acknowledged")
    (c,) = rig.rows('SELECT COUNT("vapor_lel") FROM "gas_station"')
    assert c["count"] == n
    rows = rig.rows('SELECT * FROM "gas_station" WHERE "device" = \'dev3\' ORDER BY time DESC LIMIT 1')
    assert rows == [{"_measurement": "gas_station", "time": 1_764_300_001_999, "device": "dev3", "site": "GS-1",
                     "street": "st1", "vapor_lel": 99, "tank_temp_c": 20.5}]
    (ug,) = rig.rows('SELECT * FROM "underground"')
    assert (ug["site"], ug["device"], ug["street"], ug["co_ppm"]) == ("UG-1", "u1", "st2", 7)
    assert sum(len(b.readings) for b in rig.batches) == n + 1
    assert rig.metric("safewatch_points_written_total") == n + 1


# (topic suffix after the district, payload, reasons expected, readings kept)
REJECTIONS = [
    ("gas_station/GS-1/d/telemetry", b"{not json", {"invalid_json"}, 0),
    ("gas_station/NOPE/d/telemetry", b'{"values": {"leak": 0}}', {"unknown_site"}, 0),
    ("underground/GS-1/d/telemetry", b'{"values": {"co_ppm": 1}}', {"family_mismatch"}, 0),
    ("gas_station/GS-1/d/telemetry", b'{"ts": 1764300000001, "values": {"vapor_lel": 1, "nope": 2}}',
     {"unknown_metric"}, 1),
    ("gas_station/GS-1/d/telemetry", b'{"ts": 1764300000002, "values": {"vapor_lel": "high", "leak": 1}}',
     {"non_numeric"}, 1),
    ("gas_station/GS-1/d/telemetry", b'{"ts": 1764300000003, "values": {"vapor_lel": 101, "leak": 0}}',
     {"out_of_range"}, 1),
    ("gas_station/GS-1/d/telemetry", b'[{"ts": 99999999999999, "values": {"leak": 1}}, '
     b'{"ts": 1764300000004, "values": {"leak": 1}}]', {"future_timestamp"}, 1),
    ("gas_station/GS-1/d/status", b'{"state": "asleep"}', {"bad_status"}, 0),
    ("gas_station/GS-1/d/x/telemetry", b"{}", None, 0),  # not matched by the subscription at all
]


def test_every_rejection_is_counted_and_dead_lettered_valid_parts_kept(rig: Rig, publisher: MqttClient) -> None:
    d = rig.district.name
    for suffix, payload, _, _ in REJECTIONS:
        publisher.publish(f"{d}/{suffix}", payload)
    publisher.publish(f"{d}/gas_station/GS-1/d/status", b'{"state": "offline"}', wait=True)
    expected = {r for _, _, reasons, _ in REJECTIONS for r in reasons or ()}
    wait_until(lambda: all(rig.metric("safewatch_readings_rejected_total", reason=r) == 1 for r in expected), 15,
               "every reason counted once")
    letters = rig.dead_letters()
    assert sorted(x["reason"] for x in letters) == sorted(expected)
    assert all(x["topic"].startswith(d) and x["payload"] and x["detail"] and x["time"] for x in letters)
    wait_until(lambda: rig.ingest.unacked == 0, 10, "acks")
    kept = rig.rows('SELECT * FROM "gas_station"')
    assert len(kept) == sum(n for *_, n in REJECTIONS)
    assert {(r["time"], r["vapor_lel"], r["leak"]) for r in kept} == {
        (1764300000001, 1, None), (1764300000002, None, 1), (1764300000003, None, 0), (1764300000004, None, 1)}
    statuses = [s for b in rig.batches for s in b.statuses]
    assert [(s.site, s.device, s.online) for s in statuses] == [("GS-1", "d", False)]


def test_a_failing_engine_hand_off_never_stops_ingest(stack: StackInfo, district: str, tmp_path: Path,
                                                      publisher: MqttClient) -> None:
    def explode(batch: Batch) -> None:
        raise RuntimeError("engine bug")

    rig = start_rig(stack, make_district(district), tmp_path, f"{district}-ingest", on_batch=explode)
    try:
        for i in range(20):
            publisher.publish(f"{district}/gas_station/GS-1/d/telemetry",
                              json.dumps({"ts": 1_764_300_000_000 + i, "values": {"leak": 0}}), wait=True)
        wait_until(lambda: rig.metric("safewatch_readings_accepted_total") == 20, 15, "readings accepted")
        assert rig.metric("safewatch_batch_handoff_errors_total") >= 1
        wait_until(lambda: len(rig.rows('SELECT * FROM "gas_station"')) == 20, 10, "points written")
        # Acknowledged (a redelivery would fail again), but not silently: each message is kept.
        wait_until(lambda: rig.dead.path.exists() and len(rig.dead_letters()) == 20, 5, "dead letters")
        assert {d["reason"] for d in rig.dead_letters()} == {"handoff_error"}
        assert "RuntimeError: engine bug" in rig.dead_letters()[0]["detail"]
        wait_until(lambda: rig.ingest.unacked == 0, 5, "acknowledged")
    finally:
        stop_rig(rig)


def test_unacknowledged_messages_are_redelivered_after_a_crash(stack: StackInfo, district: str,
                                                               tmp_path: Path, publisher: MqttClient) -> None:
    dist = make_district(district)
    # A writer that never starts: nothing becomes durable, so nothing may be acknowledged.
    stuck = start_rig(stack, dist, tmp_path / "a", f"{district}-ingest", start_writer=False)
    for i in range(10):
        publisher.publish(f"{district}/gas_station/GS-1/d/telemetry",
                          json.dumps({"ts": 1_764_300_000_000 + i, "values": {"leak": 1}}), wait=True)
    wait_until(lambda: stuck.metric("safewatch_messages_received_total") == 10, 10, "messages taken in")
    assert stuck.ingest.unacked == 10
    stuck.ingest._accepting = False  # a crash: no drain, no flush, just gone
    stuck.mqtt.close()

    again = start_rig(stack, dist, tmp_path / "b", f"{district}-ingest")
    try:
        wait_until(lambda: len(again.rows('SELECT * FROM "gas_station"')) == 10, 15, "redelivered points written")
        assert again.metric("safewatch_redeliveries_total") == 10
        wait_until(lambda: again.ingest.unacked == 0, 10, "acks")
    finally:
        stop_rig(again)


def test_stop_drains_and_acknowledges(stack: StackInfo, district: str, tmp_path: Path,
                                      publisher: MqttClient) -> None:
    dist = make_district(district)
    seen = threading.Event()
    rig = start_rig(stack, dist, tmp_path / "a", f"{district}-ingest", on_batch=lambda b: seen.set())
    for i in range(500):
        publisher.publish(f"{district}/gas_station/GS-1/d/telemetry",
                          json.dumps({"ts": 1_764_300_000_000 + i, "values": {"leak": 1}}))
    publisher.publish(f"{district}/gas_station/GS-1/d/status", b'"online"', wait=True)
    assert seen.wait(10)
    stop_rig(rig)
    received = rig.metric("safewatch_messages_received_total")
    assert rig.ingest.unacked == 0
    # Whatever the first run acknowledged is not sent again; the rest (some of it already sent
    # to the first run but not taken, so marked DUP) arrives now.
    rig2 = start_rig(stack, dist, tmp_path / "b", f"{district}-ingest")
    try:
        wait_until(lambda: len(rig2.rows('SELECT * FROM "gas_station"')) == 500, 15, "all points")
        assert rig2.metric("safewatch_messages_received_total") == 501 - received
    finally:
        stop_rig(rig2)
