"""A crowd venue's entrance counters: people in, people out, and the headcount between.

Each kind of venue has its own day (a mall's afternoon, a stadium's evening event, a
hospital's morning clinic, a station's rush hours): the curve gives the headcount the venue
drifts towards as a share of its capacity. Visitors stay for the kind's typical dwell time,
so outflow is headcount / dwell and inflow makes up the difference to the curve; both are
Poisson counts, and nobody leaves who is not inside, so the headcount never goes below zero.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import ClassVar

from domain.config import Site
from domain.district import District
from domain.families import CROWD_VENUE
from simulators.curves import Curve, local_hour, poisson
from simulators.kinds import DEFAULT, site_kind
from simulators.model import SiteModel

# Headcount as a share of capacity by local hour, and the typical stay in minutes.
DAYS: dict[str, tuple[Curve, float]] = {
    "mall": (Curve([(0, 0), (9.5, 0), (10, 0.05), (12, 0.25), (15, 0.4), (17, 0.33), (19.5, 0.4),
                    (21.5, 0.12), (22.2, 0)]), 75.0),
    "theatre": (Curve([(0, 0), (13, 0), (14, 0.45), (16.3, 0.45), (16.8, 0.03), (18.5, 0.05),
                       (19.3, 0.6), (21.7, 0.6), (22.3, 0.02), (23, 0)]), 150.0),
    "stadium": (Curve([(0, 0), (8, 0.01), (17, 0.02), (18, 0.1), (19.3, 0.6), (21.5, 0.6),
                       (22.2, 0.04), (23, 0)]), 180.0),
    "scenic": (Curve([(0, 0.01), (6, 0.02), (8, 0.1), (10, 0.3), (14, 0.4), (17, 0.2), (19, 0.08),
                      (21, 0.03), (23, 0.01), (24, 0.01)]), 120.0),
    "hospital": (Curve([(0, 0.03), (6, 0.05), (7.5, 0.3), (9.5, 0.55), (11.5, 0.45), (12.5, 0.25),
                        (14, 0.4), (16, 0.35), (17.5, 0.12), (20, 0.06), (24, 0.03)]), 90.0),
    "station": (Curve([(0, 0.02), (5, 0.05), (7, 0.3), (8.5, 0.45), (10, 0.2), (12, 0.2), (17, 0.3),
                       (18.5, 0.45), (20, 0.2), (22.5, 0.08), (24, 0.02)]), 15.0),
    "school": (Curve([(0, 0), (6.5, 0), (7.5, 0.6), (16.5, 0.6), (17.5, 0.05), (19, 0), (24, 0)]), 480.0),
    DEFAULT: (Curve([(0, 0.01), (8, 0.05), (11, 0.3), (15, 0.4), (19, 0.3), (22, 0.05), (24, 0.01)]), 60.0),
}
APPROACH_S = 15 * 60.0  # how fast arrivals close the gap to the curve
FLOW_WINDOW_S = 60.0  # the counters report persons per minute over the last minute


class CrowdVenueModel(SiteModel):
    family = CROWD_VENUE
    devices: ClassVar[Mapping[str, tuple[str, ...]]] = {"counter-1": ("occupancy", "inflow_per_min", "outflow_per_min")}

    def __init__(self, site: Site, district: District, rng: random.Random) -> None:
        super().__init__(site, district, rng)
        self.kind = site_kind(site)
        self.day, self.dwell_min = DAYS.get(self.kind, DAYS[DEFAULT])
        self.capacity = float(site.capacity or 1000)
        self.popularity = self.rng.uniform(0.75, 1.1)
        self.occupancy = 0
        self.inflow = 0.0  # persons per minute, smoothed over FLOW_WINDOW_S
        self.outflow = 0.0

    def _target(self, ts_ms: int) -> float:
        target = self.capacity * self.day(local_hour(ts_ms, self.tz)) * self.popularity
        # The curve stays inside the quiet band, so an ordinary day raises no crowd alert.
        return min(target, self.bands(ts_ms)["occupancy"][1])

    def _start(self, ts_ms: int) -> None:
        self.occupancy = round(self._target(ts_ms))
        steady = self.occupancy / self.dwell_min
        self.inflow = self.outflow = steady

    def _advance(self, ts_ms: int, dt_s: float) -> None:
        bands = self.bands(ts_ms)
        dt_min = dt_s / 60.0
        out_rate = self.occupancy / self.dwell_min
        in_rate = max(0.0, out_rate + (self._target(ts_ms) - self.occupancy) * 60.0 / APPROACH_S)
        # Gates meter the flow: keep below the inflow/outflow alarm levels on an ordinary day.
        in_rate = min(in_rate, bands["inflow_per_min"][1])
        out_rate = min(out_rate, bands["outflow_per_min"][1])
        entries = poisson(self.rng, in_rate * dt_min)
        exits = min(self.occupancy + entries, poisson(self.rng, out_rate * dt_min))
        self.occupancy += entries - exits
        keep = math.exp(-dt_s / FLOW_WINDOW_S)
        self.inflow = keep * self.inflow + (1.0 - keep) * entries / dt_min
        self.outflow = keep * self.outflow + (1.0 - keep) * exits / dt_min

    def _read(self, ts_ms: int) -> dict[str, float]:
        return {"occupancy": float(self.occupancy), "inflow_per_min": round(self.inflow, 1),
                "outflow_per_min": round(self.outflow, 1)}
