"""The alerting integration tests' district (``config()``, its escalation delay a parameter), a
reading of its GS-1, fast delivery options, and ``child_main``: the child process of the SIGKILL test
(started with ``python -c``, it imports child_main from here, not from a test module)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from alerting.service import AlertService
from domain import Batch, District, Reading, parse_district
from notify import DeliveryOptions, TargetPolicy
from store.influx import InfluxClient, InfluxWriter
from store.state import StateStore
from transport.mqtt import MqttClient


def loopback(district: District) -> TargetPolicy:
    """The test receivers listen on loopback."""
    return TargetPolicy(district.name, allow="127.0.0.1")


FAST = DeliveryOptions(workers=8, lease_s=2, backoff_base_s=0.1, backoff_cap_s=0.5, poll_s=0.05)


def config(district: str, escalate_after: str = "1h") -> object:
    return yaml.safe_load(f"""
district: {district}
timezone: Asia/Shanghai
departments:
  - {{id: bureau, name: Safety bureau, kind: comprehensive}}
  - {{id: commerce, name: Commerce, kind: sector}}
  - {{id: fire, name: Fire brigade, kind: sector}}
  - {{id: police, name: Police, kind: sector}}
  - {{id: office_n, name: North office, kind: territorial}}
streets: [{{id: north, name: North street, office: office_n}}]
sites:
  - {{id: GS-1, name: Station, family: gas_station, street: north, sector: commerce}}
rules:
  - {{id: vapor-level, family: gas_station, metric: vapor_lel, kind: threshold,
     levels: {{yellow: 20, orange: 25, red: 50}}, hysteresis: 2, for: 0s}}
routing:
  - {{match: {{}}, notify: [sector, street]}}
  - {{match: {{severity_at_least: orange}}, notify: [bureau, fire]}}
escalation:
  - {{severity_at_least: yellow, unacknowledged_for: {escalate_after}, notify: [police]}}
""")


def reading(value: float, device: str = "dev-1") -> Batch:
    return Batch((Reading("gas_station", "GS-1", device, "north", int(time.time() * 1000),
                          {"vapor_lel": value}),))


def child_main(arg: str) -> None:
    """Runs in a child process: a started AlertService that records two transitions, then waits to die."""
    a = json.loads(arg)
    district = parse_district(config(a["db"]), "child")
    state = StateStore(a["state_url"])
    influx = InfluxClient(a["influx_url"], a["db"])
    writer = InfluxWriter(influx, Path(a["spool"]), flush_interval=0.05)
    writer.start()
    publisher = MqttClient(a["mqtt_url"], f"{a['db']}-child")
    publisher.connect(10)
    svc = AlertService(district, state, writer, publisher, CollectorRegistry(), delivery=FAST,
                       targets=loopback(district))
    svc.start()
    svc.handle_batch(reading(22))
    svc.handle_batch(reading(30))
    print("ready", flush=True)
    time.sleep(120)
