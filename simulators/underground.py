"""An underground space: a gas and climate monitor, and a panel with the water gauge and headcount.

Fans run on a cycle (on a third of each hour); while they run the air is exchanged several
times an hour and every gas relaxes towards outdoor air, while they rest it barely moves,
so CO₂ from the people inside and CO from traffic (garages, underpasses) build up. The
result is the saw-tooth real monitors show. Temperature and humidity drift slowly around
the kind's level; the floor stays dry; people come and go with the kind's hours and are
gone at night (shelters and basements must not be lived in).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import ClassVar

from domain.config import Site
from domain.district import District
from domain.families import UNDERGROUND
from simulators.curves import Curve, local_hour, poisson, relax
from simulators.kinds import DEFAULT, site_kind
from simulators.model import SiteModel, rounded

OUTDOOR = {"co_ppm": 0.6, "co2_ppm": 430.0, "ch4_lel": 0.2, "h2s_ppm": 0.05}
AIR_CHANGES_PER_H = (0.8, 6.0)  # fans off (natural draught through shafts), fans on
FAN_CYCLE_S, FAN_ON_S = 3600.0, 1200.0
CO2_L_PER_PERSON_H = 18.0  # a resting adult breathes out about 18 litres of CO₂ an hour
CEILING_M = 2.6

# People present by local hour (persons per 1000 m²), and CO from vehicles (ppm per hour).
PEOPLE: dict[str, Curve] = {
    "shelter": Curve([(0, 0), (8, 0), (9, 6), (12, 10), (18, 8), (20.5, 2), (21, 0), (24, 0)]),
    "basement": Curve([(0, 0), (7, 0), (8, 2), (12, 3), (19, 4), (21.5, 1), (22, 0), (24, 0)]),
    "underpass": Curve([(0, 0), (5.5, 0), (7, 20), (8.5, 35), (10, 12), (17, 20), (18.5, 35), (20, 12),
                        (22, 2), (22.5, 0), (24, 0)]),
    "garage": Curve([(0, 0), (6.5, 0), (7.5, 6), (11.5, 8), (12.5, 3), (13.5, 8), (17.5, 6), (18.5, 0),
                     (24, 0)]),
    DEFAULT: Curve([(0, 0), (8, 0), (9, 4), (18, 4), (20, 0), (24, 0)]),
}
CO_SOURCE = {"garage": 6.0, "underpass": 2.0}
_DIGITS = {"co_ppm": 1, "o2_pct": 2, "ch4_lel": 1, "h2s_ppm": 2, "co2_ppm": 0, "water_level_cm": 1,
           "temp_c": 1, "humidity_pct": 1, "occupancy": 0}


class UndergroundModel(SiteModel):
    family = UNDERGROUND
    devices: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "air-1": ("co_ppm", "o2_pct", "ch4_lel", "h2s_ppm", "co2_ppm", "temp_c", "humidity_pct", "smoke"),
        "panel-1": ("water_level_cm", "occupancy"),
    }

    def __init__(self, site: Site, district: District, rng: random.Random) -> None:
        super().__init__(site, district, rng)
        r = self.rng
        self.kind = site_kind(site)
        self.people_curve = PEOPLE.get(self.kind, PEOPLE[DEFAULT])
        area = site.area_m2 or 800.0
        self.area_k = area / 1000.0
        self.volume_m3 = area * CEILING_M
        self.fan_phase_s = r.uniform(0.0, FAN_CYCLE_S)
        self.gas = dict(OUTDOOR)
        self.temp_base = r.uniform(15.0, 20.0)
        self.humidity_base = r.uniform(55.0, 68.0)
        self.temp = self.temp_base
        self.humidity = self.humidity_base
        self.water = 0.0
        self.occupancy = 0

    def fans_on(self, ts_ms: int) -> bool:
        return (ts_ms / 1000.0 + self.fan_phase_s) % FAN_CYCLE_S < FAN_ON_S

    def _people_target(self, ts_ms: int) -> float:
        return self.people_curve(local_hour(ts_ms, self.tz)) * self.area_k

    def _start(self, ts_ms: int) -> None:
        self.occupancy = round(self._people_target(ts_ms))
        self.gas["co2_ppm"] += 150.0 + 15.0 * self.occupancy / max(self.area_k, 0.1)

    def _advance(self, ts_ms: int, dt_s: float) -> None:
        r = self.rng
        fans = self.fans_on(ts_ms)
        ach = AIR_CHANGES_PER_H[1] if fans else AIR_CHANGES_PER_H[0]
        tau = 3600.0 / ach
        co2_source = self.occupancy * CO2_L_PER_PERSON_H / 1000.0 / self.volume_m3 * 1e6  # ppm per hour
        sources = {"co2_ppm": co2_source, "co_ppm": CO_SOURCE.get(self.kind, 0.3), "ch4_lel": 0.08,
                   "h2s_ppm": 0.02}
        for gas, outdoor in OUTDOOR.items():
            # Steady state of a well-mixed room: outdoor + source / air changes.
            self.gas[gas] = relax(self.gas[gas], outdoor + sources[gas] / ach, dt_s, tau)

        hour = local_hour(ts_ms, self.tz)
        drift = math.sqrt(dt_s / 3600.0)
        self.temp_base += r.gauss(0.0, 0.15 * drift) - 0.02 * (self.temp_base - 17.5) * dt_s / 3600.0
        self.humidity_base += r.gauss(0.0, 0.8 * drift) - 0.05 * (self.humidity_base - 62.0) * dt_s / 3600.0
        self.temp = relax(self.temp, self.temp_base + 0.6 * math.sin(math.pi * hour / 12.0), dt_s, 1800.0)
        humid_target = self.humidity_base - (4.0 if fans else 0.0) + 0.02 * self.occupancy / max(self.area_k, 0.1)
        self.humidity = relax(self.humidity, humid_target, dt_s, 900.0)

        self.water = relax(self.water, 0.0, dt_s, 600.0)
        target = self._people_target(ts_ms)
        gap = target - self.occupancy
        moves = poisson(r, abs(gap) * min(1.0, dt_s / 300.0) + 0.02 * target * dt_s / 60.0)
        self.occupancy = max(0, self.occupancy + (moves if gap > 0 else -moves)) if target > 0 else 0

    def _read(self, ts_ms: int) -> dict[str, float]:
        g, n = self.gas, self.noise
        o2 = 20.93 - (g["co2_ppm"] - OUTDOOR["co2_ppm"]) / 10_000.0  # CO₂ displaces O₂ ppm for ppm
        return rounded({
            "co_ppm": max(0.0, g["co_ppm"] + n("co_ppm", 0.2)),
            "o2_pct": o2 + n("o2_pct", 0.02),
            "ch4_lel": max(0.0, g["ch4_lel"] + n("ch4_lel", 0.1)),
            "h2s_ppm": max(0.0, g["h2s_ppm"] + n("h2s_ppm", 0.03)),
            "co2_ppm": max(0.0, g["co2_ppm"] + n("co2_ppm", 8.0)),
            "temp_c": self.temp + n("temp_c", 0.05),
            "humidity_pct": min(100.0, max(0.0, self.humidity + n("humidity_pct", 0.3))),
            "smoke": 0.0,
            "water_level_cm": max(0.0, self.water + n("water_level_cm", 0.05)),
            "occupancy": float(self.occupancy),
        }, _DIGITS)
