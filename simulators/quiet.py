"""Where background readings must stay so that normal operation raises no alert.

The device models are plausible on their own, but a district config may set its levels
anywhere; the background is clamped below every unscheduled threshold's lowest level (by
its hysteresis, or 2 %) and inside scheduled ones while their hours are on, so the only
alerts a simulation raises are the scenarios' and the rare device fault bits'. Binary
metrics (leak, barrier_fault, smoke) are left alone: their rare spontaneous bits are part
of the realism.

Trend rules bound the sensor noise instead: with readings every 5 s a trend rule can fire
on its first ``min_points`` readings, where noise of σ gives a least-squares slope of about
4σ per minute, so each metric's noise is kept under 1/20 of its smallest slope limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from domain.config import Schedule, Site, ThresholdRule, TrendRule
from domain.derived import scale, source_of
from domain.district import District
from domain.families import FAMILIES, device_metrics

Band = tuple[float, float]
NOISE_PER_SLOPE = 20.0  # a trend rule's slope limit over the largest sensor noise σ allowed



@dataclass(frozen=True, slots=True)
class _Limit:
    metric: str
    above: bool  # True: the value must stay below ``bound``; False: above it
    bound: float
    schedule: Schedule | None


def _limit(site: Site, rule: ThresholdRule) -> _Limit | None:
    spec = FAMILIES[rule.family][rule.metric]
    if spec.binary:
        return None
    # Derived metrics are limited through the device metric they come from.
    factor = scale(site, rule.metric)
    if factor is None:
        return None
    metric = source_of(rule.metric)
    above = rule.direction == "above"
    first = rule.ordered_levels[0][1]  # the lowest severity is the first to fire
    margin = max(rule.hysteresis, 0.02 * abs(first))
    bound = (first - margin if above else first + margin) * factor
    return _Limit(metric, above, bound, rule.schedule)


class SiteLimits:
    """The quiet band of each device metric of one site, by minute of the local day."""

    def __init__(self, site: Site, district: District) -> None:
        self.site = site
        self._physical: dict[str, Band] = {m: (s.low, s.high) for m, s in device_metrics(site.family).items()}
        limits = [lim for rule in district.rules_for(site.family) if isinstance(rule, ThresholdRule)
                  if (lim := _limit(site, rule)) is not None]
        self._always = self._combine(self._physical, [lim for lim in limits if lim.schedule is None])
        self._scheduled = [lim for lim in limits if lim.schedule is not None]
        self._noise: dict[str, float] = {}
        for rule in district.rules_for(site.family):
            if isinstance(rule, TrendRule) and rule.metric in self._physical:
                for slope in (rule.slope_above, rule.slope_below):
                    if slope:
                        budget = abs(slope) / NOISE_PER_SLOPE
                        self._noise[rule.metric] = min(budget, self._noise.get(rule.metric, budget))

    @staticmethod
    def _combine(base: Mapping[str, Band], limits: list[_Limit]) -> dict[str, Band]:
        out = dict(base)
        for lim in limits:
            if lim.metric not in out:
                continue
            lo, hi = out[lim.metric]
            new = (lo, min(hi, lim.bound)) if lim.above else (max(lo, lim.bound), hi)
            phys_lo, phys_hi = base[lim.metric]
            new = (max(new[0], phys_lo), min(new[1], phys_hi))
            if new[0] <= new[1]:  # a config whose levels leave no quiet room keeps the wider band
                out[lim.metric] = new
        return out

    def at(self, minute_of_day: int) -> Mapping[str, Band]:
        active = [lim for lim in self._scheduled if lim.schedule is not None
                  and lim.schedule.active_at(minute_of_day)]
        return self._combine(self._always, active) if active else self._always

    def physical(self) -> Mapping[str, Band]:
        return self._physical

    def noise(self, metric: str, wanted: float) -> float:
        """The sensor noise σ a model may add to ``metric``: ``wanted``, unless a trend rule needs less."""
        return min(wanted, self._noise.get(metric, wanted))


def clamp(values: dict[str, float], bands: Mapping[str, Band]) -> dict[str, float]:
    """Clamp every value into its band, in place; returns ``values`` for chaining."""
    for metric, value in values.items():
        band = bands.get(metric)
        if band is not None:
            values[metric] = min(max(value, band[0]), band[1])
    return values
