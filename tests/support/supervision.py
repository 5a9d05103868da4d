"""The supervision tests' district (``YAML``, ``district()``), principals, and ``Parts``: the real
AlertService and SupervisionService over one store, the alert hook installed."""

from __future__ import annotations

import yaml

from alerting.service import AlertService
from domain.alerts import AlertKey, Signal
from domain.clock import now_ms
from domain.district import District, parse_district
from domain.principal import Principal, Role, Via
from domain.severity import Severity
from store.state import StateStore
from supervision.service import SupervisionService

DAY = 86_400_000
YAML = """
district: sup
timezone: Asia/Shanghai
departments:
  - {id: bureau, name: 安监, kind: comprehensive}
  - {id: trade, name: 商务, kind: sector}
  - {id: office_n, name: 北街道办, kind: territorial}
  - {id: police, name: 公安, kind: sector}
streets: [{id: north, name: 北街, office: office_n}]
sites:
  - {id: S1, name: 一号站, family: gas_station, street: north, sector: trade}
  - {id: S2, name: 二号站, family: gas_station, street: north, sector: trade}
rules:
  - {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20, orange: 25, red: 50}}
routing:
  - {match: {}, notify: [sector, street]}
  - {match: {severity_at_least: orange}, notify: [bureau]}
supervision:
  list: {severity_at_least: orange}
  deadlines: {major: 1d, general: 7d}
  overdue:
    - {after: 0s, notify: [sector, street]}
    - {after: 1d, notify: [bureau]}
    - {after: 3d, notify: [police]}
credit:
  window: 30d
  grades: {A: 90, B: 75, C: 60}
  weights: {alerts: {yellow: 1, orange: 3, red: 5}, hazards: {general: 5, major: 15}, overdue_day: 2,
            rejected_review: 5}
"""
ADMIN = Principal(Via.ADMIN_TOKEN, Role.ADMIN)
SITE_S1 = Principal(Via.SESSION, Role.SITE, username="s1", sites=frozenset({"S1"}))


def district(name: str = "sup") -> District:
    data = yaml.safe_load(YAML)
    data["district"] = name
    return parse_district(data, "<test>")


class Parts:
    def __init__(self, store: StateStore, hook: bool = True) -> None:
        self.district = district()
        self.store = store
        self.alerts = AlertService(self.district, store)
        self.sup = SupervisionService(self.district, store, close_alert=self.alerts.close)
        if hook:
            self.alerts.listeners.append(self.sup.on_changes)

    def signal(self, site: str, sev: Severity | None, device: str = "d1", at: int | None = None) -> None:
        key = AlertKey("vapor", site, device, "vapor_lel")
        t = now_ms() if at is None else at
        self.alerts.apply_signals([
            Signal.fire(key, family="gas_station", kind="threshold", at_ms=t, severity=sev, value=30.0)
            if sev is not None else Signal.clear(key, family="gas_station", kind="threshold", at_ms=t, value=30.0)])

    def close(self) -> None:
        self.alerts.stop()
