"""The API in-process over real parts (tests/test_api/): its district (departments that must not
see each other's sites), the admin token, and ``Api``/``build_api``, which put the app in a known state.
The fixtures that build one are in tests/test_api/conftest.py."""

from __future__ import annotations

import time

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alerting.service import AlertService
from api.app import create_app
from api.context import ApiContext
from domain.alerts import Alert
from domain.district import District, parse_district
from domain.readings import Batch, Reading
from domain.settings import Settings
from notify import TargetPolicy
from store.influx import InfluxClient
from store.state import StateStore

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# GS-001 is commerce's (sector) in street a; CV-001 culture's and UG-001 civil_defence's, both in
# street b. safety_bureau sees everything (orange and up), fire only gas stations.
DISTRICT_YAML = """
district: {name}
timezone: Asia/Shanghai
departments:
  - {{id: safety_bureau, name: 区安监局, kind: comprehensive}}
  - {{id: commerce, name: 区商务委, kind: sector}}
  - {{id: culture, name: 区文化委, kind: sector}}
  - {{id: civil_defence, name: 区民防局, kind: sector}}
  - {{id: fire, name: 消防支队, kind: sector}}
  - {{id: street_a, name: A街道办事处, kind: territorial}}
  - {{id: street_b, name: B街道办事处, kind: territorial}}
streets:
  - {{id: a, name: A街道, office: street_a}}
  - {{id: b, name: B街道, office: street_b}}
sites:
  - {{id: GS-001, name: 某加油站, family: gas_station, street: a, sector: commerce}}
  - {{id: CV-001, name: 某剧院, family: crowd_venue, street: b, sector: culture, capacity: 1000, area_m2: 500}}
  - {{id: UG-001, name: 某人防工程, family: underground, street: b, sector: civil_defence}}
rules:
  - {{id: vapor-level, family: gas_station, metric: vapor_lel, kind: threshold, direction: above,
     levels: {{blue: 10, yellow: 20, orange: 25, red: 50}}, hysteresis: 2}}
  - {{id: o2-low, family: underground, metric: o2_pct, kind: threshold, direction: below,
     levels: {{yellow: 19.5, red: 18}}}}
  - {{id: crowding, family: crowd_venue, metric: occupancy_ratio, kind: threshold, direction: above,
     levels: {{yellow: 0.8, red: 1.0}}}}
routing:
  - {{match: {{}}, notify: [sector, street]}}
  - {{match: {{severity_at_least: orange}}, notify: [safety_bureau]}}
  - {{match: {{family: gas_station, severity_at_least: orange}}, notify: [fire]}}
"""
DEPARTMENTS = ("safety_bureau", "commerce", "culture", "civil_defence", "fire", "street_a", "street_b")
STREET = {"GS-001": "a", "CV-001": "b", "UG-001": "b"}
FAMILY = {"GS-001": "gas_station", "CV-001": "crowd_venue", "UG-001": "underground"}


def district_of(name: str) -> District:
    return parse_district(yaml.safe_load(DISTRICT_YAML.format(name=name)), "<test>")


class Api:
    """The app under test with its parts, and helpers to put it in a known state."""

    def __init__(self, app: FastAPI, ctx: ApiContext, service: AlertService, state: StateStore) -> None:
        self.app, self.ctx, self.service, self.state = app, ctx, service, state
        self.client = TestClient(app)
        self.tokens: dict[str, dict[str, str]] = {"admin": ADMIN}

    def as_(self, who: str) -> dict[str, str]:
        """Authorization headers for ``admin`` or a department (its token made once, by the API)."""
        if who not in self.tokens:
            r = self.client.post("/api/v1/tokens", json={"department": who}, headers=ADMIN)
            assert r.status_code == 201, r.text
            self.tokens[who] = {"Authorization": f"Bearer {r.json()['token']}"}
        return self.tokens[who]

    def reading(self, site: str, metric: str, value: float, device: str = "d1", ts_ms: int | None = None) -> None:
        ts = int(time.time() * 1000) if ts_ms is None else ts_ms
        r = Reading(FAMILY[site], site, device, STREET[site], ts, {metric: value})
        self.service.handle_batch(Batch((r,)))

    def fire(self, site: str, metric: str, value: float, device: str = "d1") -> Alert:
        """Feeds a reading past a threshold and returns the alert it raised (or moved)."""
        self.reading(site, metric, value, device)
        alerts = self.state.list_alerts(site=site, limit=1)
        assert alerts and alerts[0].metric == metric, f"no alert on {site}.{metric} after value {value}"
        return alerts[0]


def build_api(district: District, state: StateStore, influx: InfluxClient | None,
              heartbeat_s: float = 15.0) -> Api:
    registry = CollectorRegistry()
    settings = Settings(webhook_allow="127.0.0.1")  # the tests' webhook receivers listen on loopback
    service = AlertService(district, state, registry=registry,
                           targets=TargetPolicy.from_settings(settings, district.name))
    ctx = ApiContext(district=district, settings=settings, admin_token=ADMIN_TOKEN, registry=registry,
                     health=lambda: ("ok", {"state": {"ok": True}}), state=state, influx=influx,
                     alerts=service, sse_heartbeat_s=heartbeat_s)
    return Api(create_app(ctx), ctx, service, state)
