"""A fuel station: one underground tank with its gauge, and the forecourt's vapour detector.

Sales follow the day and draw the tank down; a tanker comes when it runs low (in daytime)
and refills it over half an hour, pushing vapour into the tank's ullage (pressure up) and
some out at the fill point (a small vapour bump). The tank's temperature follows the
ground with a small daily swing; pressure follows temperature, and sales draw a slight
vacuum. Leak and barrier-fault bits are rare sensor events.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import ClassVar

from domain.config import Site
from domain.district import District
from domain.families import GAS_STATION
from simulators.curves import Curve, daily_wave, local_hour, relax
from simulators.model import SiteModel, rounded

# Share of the peak sales rate by local hour (commuter peaks, quiet nights).
SALES = Curve([(0, 0.15), (5, 0.2), (7, 0.7), (8.5, 1.0), (11, 0.7), (13, 0.8), (17.5, 1.0),
               (20, 0.6), (22, 0.3), (24, 0.15)])
PEAK_SALES_PCT_PER_H = 3.0
DELIVERY_S = 30 * 60.0
DELIVERY_HOURS = (6.0, 22.0)  # tankers are not let into the city centre at night
LEAK_PER_H = 1 / 3000.0  # per station: a few a year from the sump sensors
BARRIER_FAULT_PER_H = 1 / 8000.0
_DIGITS = {"vapor_lel": 1, "tank_pressure_kpa": 2, "tank_temp_c": 1, "tank_level_pct": 1}


class GasStationModel(SiteModel):
    family = GAS_STATION
    devices: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "vapor-1": ("vapor_lel", "leak", "barrier_fault"),
        "tank-1": ("tank_pressure_kpa", "tank_temp_c", "tank_level_pct"),
    }

    def __init__(self, site: Site, district: District, rng: random.Random) -> None:
        super().__init__(site, district, rng)
        r = self.rng
        self.sales_factor = r.uniform(0.6, 1.3)
        self.ground_c = r.uniform(13.0, 18.0)
        self.reorder_pct = r.uniform(25.0, 35.0)
        self.level = r.uniform(40.0, 75.0)
        self.temp = self.ground_c
        self.pressure = 0.3
        self.vapour = r.uniform(0.2, 0.8)
        self.delivery_left_s = 0.0
        self.delivery_rate = 0.0  # % per second while a delivery runs
        self.tanker_due_s: float | None = None
        self.leak_left_s = 0.0
        self.fault_left_s = 0.0

    def _start(self, ts_ms: int) -> None:
        self.temp = self._tank_target(local_hour(ts_ms, self.tz))

    def _tank_target(self, hour: float) -> float:
        return self.ground_c + 1.2 * daily_wave(hour, 16.0)

    def _advance(self, ts_ms: int, dt_s: float) -> None:
        r, hour = self.rng, local_hour(ts_ms, self.tz)
        sales = PEAK_SALES_PCT_PER_H / 3600.0 * SALES(hour) * self.sales_factor
        fill = self._deliveries(hour, dt_s)
        self.level = max(0.5, self.level - sales * dt_s + fill)
        delivering = fill > 0.0

        self.temp = relax(self.temp, self._tank_target(hour), dt_s, 3 * 3600.0) + r.gauss(0, 0.01)
        pressure_target = 0.25 + 0.06 * (self.temp - self.ground_c) - 0.35 * SALES(hour) * self.sales_factor
        if delivering:
            pressure_target += 1.0  # vapour displaced into the ullage faster than it returns
        self.pressure = relax(self.pressure, pressure_target, dt_s, 240.0)
        vapour_target = 0.5 + (1.6 if delivering else 0.0) + 0.3 * SALES(hour)
        self.vapour = relax(self.vapour, vapour_target, dt_s, 120.0)

        self.leak_left_s = self._rare_bit(self.leak_left_s, LEAK_PER_H, dt_s, (120.0, 600.0))
        self.fault_left_s = self._rare_bit(self.fault_left_s, BARRIER_FAULT_PER_H, dt_s, (300.0, 3600.0))

    def _deliveries(self, hour: float, dt_s: float) -> float:
        """Percent of tank added during this step (0 unless a tanker is unloading)."""
        if self.delivery_left_s > 0.0:
            step = min(dt_s, self.delivery_left_s)
            self.delivery_left_s -= step
            return self.delivery_rate * step
        open_hours = DELIVERY_HOURS[0] <= hour < DELIVERY_HOURS[1]
        if self.tanker_due_s is None:
            if self.level < self.reorder_pct and open_hours:
                self.tanker_due_s = self.rng.uniform(600.0, 3600.0)  # ordered; on its way
            return 0.0
        self.tanker_due_s -= dt_s
        if self.tanker_due_s <= 0.0 and open_hours:
            self.tanker_due_s = None
            ceiling = self.limits.at(int(hour * 60))["tank_level_pct"][1]
            fill_to = min(90.0, ceiling - 3.0)  # never overfill: the quiet band is below any alarm
            if fill_to > self.level:
                self.delivery_left_s = DELIVERY_S
                self.delivery_rate = (fill_to - self.level) / DELIVERY_S
        return 0.0

    def _rare_bit(self, left_s: float, per_h: float, dt_s: float, span: tuple[float, float]) -> float:
        if left_s > 0.0:
            return max(0.0, left_s - dt_s)
        if self.rng.random() < per_h * dt_s / 3600.0:
            return self.rng.uniform(*span)
        return 0.0

    def _read(self, ts_ms: int) -> dict[str, float]:
        n = self.noise
        return rounded({
            "vapor_lel": max(0.0, self.vapour + n("vapor_lel", 0.1)),
            "tank_pressure_kpa": self.pressure + n("tank_pressure_kpa", 0.03),
            "tank_temp_c": self.temp + n("tank_temp_c", 0.05),
            "tank_level_pct": self.level + n("tank_level_pct", 0.05),
            "leak": 1.0 if self.leak_left_s > 0.0 else 0.0,
            "barrier_fault": 1.0 if self.fault_left_s > 0.0 else 0.0,
        }, _DIGITS)
