"""The e2e suite's own district: small, unlike Xicheng in every id, and fast to trip.

Every site exists for one test, so tests sharing a ``serve`` never see each other's alerts.
Thresholds fire at once (``for: 0s``), escalation and the deadman wait seconds, not minutes.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

TIMEZONE = "Asia/Urumqi"  # +06:00: times stamped with Beijing's +08:00 would show up as wrong
STREET = "street_a"
DEADMAN_AFTER_S = 4.0
ESCALATE_AFTER_S = 2.0

# site id → family
SITES: dict[str, str] = {
    # gas stations: one per test
    **dict.fromkeys(("GS-RD", "GS-RJ", "GS-HI", "GS-TR", "GS-FLOW", "GS-ESC", "GS-TOK", "GS-X1", "GS-EV",
                     "GS-SIL", "GS-SSE", "GS-ARR", "GS-F1", "GS-LT", "GS-DUR", "GS-OUT"), "gas_station"),
    "CV-1": "crowd_venue", "CV-2": "crowd_venue",
    **dict.fromkeys(("UG-X1", "UG-DM1", "UG-DM2"), "underground"),
}
SECTOR = {"gas_station": "trade", "crowd_venue": "trade", "underground": "civil"}
CAPACITY, AREA_M2 = 1000, 500
DEPARTMENTS = ("ops", "trade", "civil", "guard", "office_a")


def new_name() -> str:
    """A unique district (topic prefix, InfluxDB database, MQTT client ids) per serve."""
    return f"e2e_{uuid.uuid4().hex[:8]}"


def district_config(name: str) -> dict[str, Any]:
    def site(sid: str, family: str) -> dict[str, Any]:
        s: dict[str, Any] = {"id": sid, "name": f"站点 {sid}", "family": family, "street": STREET,
                             "sector": SECTOR[family]}
        if family == "crowd_venue":
            s |= {"capacity": CAPACITY, "area_m2": AREA_M2}
        return s

    return {
        "district": name,
        "timezone": TIMEZONE,
        "departments": [
            {"id": "ops", "name": "综合办", "kind": "comprehensive"},
            {"id": "trade", "name": "商务科", "kind": "sector"},
            {"id": "civil", "name": "人防科", "kind": "sector"},
            {"id": "guard", "name": "消防队", "kind": "sector"},
            {"id": "office_a", "name": "甲街道办", "kind": "territorial"},
        ],
        "streets": [{"id": STREET, "name": "甲街道", "office": "office_a"}],
        "sites": [site(sid, family) for sid, family in SITES.items()],
        "rules": [
            {"id": "vapor-level", "family": "gas_station", "metric": "vapor_lel", "kind": "threshold",
             "direction": "above", "levels": {"blue": 10, "yellow": 20, "orange": 25, "red": 50},
             "hysteresis": 2, "for": "0s"},
            {"id": "pressure-level", "family": "gas_station", "metric": "tank_pressure_kpa", "kind": "threshold",
             "direction": "above", "levels": {"yellow": 150, "red": 250}, "for": "0s"},
            # slope_above is out of reach: only the forecast (red within 3h) can fire it
            {"id": "pressure-rising", "family": "gas_station", "metric": "tank_pressure_kpa", "kind": "trend",
             "window": "10m", "min_points": 3, "slope_above": 30,
             "forecast": {"rule": "pressure-level", "level": "red", "within": "3h"}, "severity": "yellow"},
            {"id": "crowd-ratio", "family": "crowd_venue", "metric": "occupancy_ratio", "kind": "threshold",
             "direction": "above", "levels": {"yellow": 0.8, "red": 1.0}, "for": "0s"},
            {"id": "co-level", "family": "underground", "metric": "co_ppm", "kind": "threshold",
             "direction": "above", "levels": {"orange": 50}, "for": "0s"},
            {"id": "ug-silent", "kind": "deadman", "family": "underground", "after": f"{DEADMAN_AFTER_S:g}s",
             "severity": "yellow"},
        ],
        "routing": [
            {"match": {}, "notify": ["sector", "street"]},
            {"match": {"severity_at_least": "orange"}, "notify": ["guard"]},
        ],
        "escalation": [
            {"severity_at_least": "red", "unacknowledged_for": f"{ESCALATE_AFTER_S:g}s", "notify": ["ops"]},
        ],
        # These tests close alerts themselves (section 5); an alert listed as a hazard (section 10)
        # is closed by the hazard's verification instead, so this district lists no alerts.
        "supervision": {"list": {"from_alerts": False}},
    }


def routed(site: str, severity: str) -> set[str]:
    """The departments the config above routes an alert of `site` at `severity` to."""
    deps = {SECTOR[SITES[site]], "office_a"}
    return deps | {"guard"} if severity in ("orange", "red") else deps


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
