"""A one-station district for AlertService tests without network (``district()``, optionally with a
rule dropped, as a restart after a config change sees it) and ``batch()``, readings of its GS-1 now."""

from __future__ import annotations

import time

import yaml

from domain import Batch, District, Reading, parse_district

CONFIG = """
district: svc
departments:
  - {id: commerce, name: Commerce, kind: sector}
  - {id: office, name: Office, kind: territorial}
streets: [{id: main, name: Main, office: office}]
sites: [{id: GS-1, name: Station, family: gas_station, street: main, sector: commerce}]
rules:
  - {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20, red: 50},
     hysteresis: 2}
  - {id: leak, family: gas_station, metric: leak, kind: threshold, levels: {red: 0.5}}
routing: [{match: {}, notify: [sector, street]}]
"""


def district(drop_rule: str | None = None) -> District:
    data = yaml.safe_load(CONFIG)
    if drop_rule:
        data["rules"] = [r for r in data["rules"] if r["id"] != drop_rule]
    return parse_district(data, "svc-test")


def batch(device: str = "d1", **values: float) -> Batch:
    return Batch((Reading("gas_station", "GS-1", device, "main", int(time.time() * 1000), values),))
