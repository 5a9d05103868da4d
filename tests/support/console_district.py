"""The console tests' own district: two streets, two sectors, a site without coordinates.

Nothing here is Xicheng's: other ids, another time zone (+06:00), thresholds that fire at once.
"""

from __future__ import annotations

from typing import Any

TIMEZONE = "Asia/Urumqi"
PASSWORD = "correct-horse-battery"
# username → (role, department, sites)
USERS: dict[str, tuple[str, str | None, list[str]]] = {
    "ada": ("admin", None, []),
    "otto": ("operator", "fuel", []),
    "vera": ("viewer", "fuel", []),
    "sita": ("site", None, ["GS-N1"]),
}


def config(name: str) -> dict[str, Any]:
    def gas(sid: str, street: str, loc: tuple[float, float] | None) -> dict[str, Any]:
        s: dict[str, Any] = {"id": sid, "name": f"加油站 {sid}", "family": "gas_station", "street": street,
                             "sector": "fuel"}
        return s | ({"location": {"lat": loc[0], "lon": loc[1]}} if loc else {})

    return {
        "district": name,
        "timezone": TIMEZONE,
        "departments": [
            {"id": "hq", "name": "区应急局", "kind": "comprehensive"},
            {"id": "fuel", "name": "能源科", "kind": "sector"},
            {"id": "shelter", "name": "人防办", "kind": "sector"},
            {"id": "office_n", "name": "北街道办", "kind": "territorial"},
            {"id": "office_s", "name": "南街道办", "kind": "territorial"},
        ],
        "streets": [{"id": "north", "name": "北街道", "office": "office_n"},
                    {"id": "south", "name": "南街道", "office": "office_s"}],
        "sites": [
            gas("GS-N1", "north", (43.80, 87.60)), gas("GS-N2", "north", (43.81, 87.62)),
            gas("GS-N3", "north", None),  # no coordinates: drawn with its street
            gas("GS-S1", "south", (43.76, 87.61)),
            {"id": "UG-S1", "name": "人防工程 S1", "family": "underground", "street": "south", "sector": "shelter",
             "location": {"lat": 43.77, "lon": 87.58}},
        ],
        "rules": [
            {"id": "vapour-level", "family": "gas_station", "metric": "vapor_lel", "kind": "threshold",
             "direction": "above", "levels": {"blue": 10, "yellow": 20, "orange": 25, "red": 50},
             "hysteresis": 2, "for": "0s"},
            {"id": "vapour-rising", "family": "gas_station", "metric": "vapor_lel", "kind": "trend",
             "window": "10m", "min_points": 3, "slope_above": 1000,
             "forecast": {"rule": "vapour-level", "level": "red", "within": "1m"}, "severity": "orange"},
            {"id": "co-level", "family": "underground", "metric": "co_ppm", "kind": "threshold",
             "direction": "above", "levels": {"orange": 50}, "for": "0s"},
        ],
        "routing": [
            {"match": {}, "notify": ["sector", "street"]},
            {"match": {"severity_at_least": "orange"}, "notify": ["hq"]},
        ],
        "escalation": [{"severity_at_least": "red", "unacknowledged_for": "10m", "notify": ["hq"]}],
    }
