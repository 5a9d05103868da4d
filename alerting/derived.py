"""Metrics the engine derives from a site's own readings: a crowd venue's fill and density.

``occupancy_ratio`` = occupancy / capacity and ``density_per_m2`` = occupancy / area_m2,
computed from each occupancy reading with the site's configured capacity and area. They
belong to the device that reported the occupancy (its key, its ``latest`` entry), so a
venue with one counter per hall gets one ratio per hall.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.district import District
from domain.families import CROWD_VENUE

SOURCE_METRIC = "occupancy"


class DerivedMetrics:
    def __init__(self, district: District) -> None:
        self._divisors: dict[str, tuple[tuple[str, float], ...]] = {}
        for site in district.sites.values():
            if site.family != CROWD_VENUE:
                continue
            pairs = []
            if site.capacity:
                pairs.append(("occupancy_ratio", float(site.capacity)))
            if site.area_m2:
                pairs.append(("density_per_m2", float(site.area_m2)))
            if pairs:
                self._divisors[site.id] = tuple(pairs)

    def derive(self, site: str, values: Mapping[str, float]) -> dict[str, float] | None:
        """The derived values for one reading of ``site``; None when it has none to derive."""
        divisors = self._divisors.get(site)
        if divisors is None:
            return None
        occupancy = values.get(SOURCE_METRIC)
        if occupancy is None:
            return None
        return {metric: occupancy / divisor for metric, divisor in divisors}
