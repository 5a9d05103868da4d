"""The small district the simulator, scenario and demo tests build on.

Every one of them needs the same frame (a bureau, an office, one street) and a few gas
stations; each test module adds the sites and rules it is about, as inline YAML.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import yaml

TZ = ZoneInfo("Asia/Shanghai")  # the timezone of every district built here

FRAME = """
timezone: Asia/Shanghai
departments:
  - {id: bureau, name: Bureau, kind: comprehensive}
  - {id: office, name: Office, kind: territorial}
streets:
  - {id: main, name: Main Street, office: office}
"""
_STATION_NAMES = ("Station One", "Station Two", "Station Three", "Station Four")


def stations(count: int, sector: str = "bureau") -> list[dict[str, Any]]:
    """Gas stations G1..G<count> on the frame's street, as config entries."""
    if not 0 <= count <= len(_STATION_NAMES):
        raise ValueError(f"stations count {count}: must be between 0 and {len(_STATION_NAMES)}")
    return [{"id": f"G{i}", "name": name, "family": "gas_station", "street": "main", "sector": sector}
            for i, name in enumerate(_STATION_NAMES[:count], start=1)]


def district_data(name: str, sites: str = "", rules: str = "", *, gas_stations: int = 2,
                  sector: str = "bureau") -> dict[str, Any]:
    """A fresh config document (safe to modify): the frame, ``gas_stations`` stations, then
    ``sites`` and ``rules`` (YAML lists)."""
    data: dict[str, Any] = {"district": name} | yaml.safe_load(FRAME)
    data["sites"] = stations(gas_stations, sector) + (yaml.safe_load(sites) or [])
    data["rules"] = yaml.safe_load(rules) or []
    return data
