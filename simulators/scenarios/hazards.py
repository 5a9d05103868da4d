"""Physical incidents: a vapour leak, tank overpressure, a crowd surge, CO build-up, flooding.

Each follows the same arc: a rise (slow enough for the trend rule to see it first where
there is one), a hold past the rule's highest level for longer than its ``for``, and a
recovery back to the background, so the operator sees the alert fire, climb and resolve.
"""

from __future__ import annotations

from domain.config import Site, ThresholdRule
from domain.families import CROWD_VENUE, GAS_STATION, UNDERGROUND
from simulators.curves import Curve
from simulators.scenarios.base import (
    Scenario,
    ScenarioContext,
    hold_s,
    lowest_bound,
    past_top,
    threshold_rule,
    trend_rule,
)


def _arc(rise_s: float, peak: float, hold: float, fall_s: float, start: float = 0.0) -> Curve:
    return Curve([(0.0, start), (rise_s, peak), (rise_s + hold, peak), (rise_s + hold + fall_s, 0.0)])


class VaporLeak(Scenario):
    name = "vapor-leak"
    family = GAS_STATION
    metrics = ("vapor_lel",)
    summary = "vapour at a station creeps up (trend alert first), then climbs fast past the red level, then clears"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        level = threshold_rule(self.district, GAS_STATION, "vapor_lel")
        trend = trend_rule(self.district, GAS_STATION, "vapor_lel")
        creep_to = 0.7 * lowest_bound(level, 10.0)  # stay below the first level while creeping
        self.peak = past_top(level, 60.0, GAS_STATION, "vapor_lel")
        window, points = (trend.window, trend.min_points) if trend else (300.0, 5)
        min_slope = 0.0  # per second: fast enough for the trend rule to fire on the creep alone
        if trend is not None and trend.slope_above is not None:
            min_slope = 2.0 * trend.slope_above / 60.0
        elif trend is not None and trend.forecast is not None:
            # Only a forecast: the line must reach the forecast level well within its horizon.
            target = self.district.rules.get(trend.forecast.rule)
            bound = target.levels.get(trend.forecast.level.label, self.peak) \
                if isinstance(target, ThresholdRule) else self.peak
            min_slope = 1.5 * bound / trend.forecast.within
        self.creep_per_s = max(creep_to / max(0.6 * window, (points + 3) * ctx.cadence_s), min_slope)
        self.creep_s = creep_to / self.creep_per_s
        climb_s = min(300.0, max(60.0, (self.peak - creep_to) / (8.0 * self.creep_per_s)))
        hold = hold_s(level, 120.0)
        self.climb_end_s = self.creep_s + climb_s
        self.curve = Curve([(0.0, 0.0), (self.creep_s, creep_to), (self.climb_end_s, self.peak),
                            (self.climb_end_s + hold, self.peak), (self.climb_end_s + hold + 300.0, 0.0)])
        self.duration_s = self.curve.end

    def shape(self, t: float, values: dict[str, float]) -> None:
        v = self.curve(t)
        values["vapor_lel"] = round(values["vapor_lel"] + v + self.rng.gauss(0.0, 0.01 * v), 1)


class TankOverpressure(Scenario):
    name = "tank-overpressure"
    family = GAS_STATION
    metrics = ("tank_pressure_kpa",)
    summary = "a stuck pressure/vacuum valve during a delivery drives tank pressure past the red level, then relieves"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        rule = threshold_rule(self.district, GAS_STATION, "tank_pressure_kpa")
        self.peak = past_top(rule, 50.0, GAS_STATION, "tank_pressure_kpa")
        self.curve = _arc(180.0, self.peak, hold_s(rule, 120.0), 60.0)
        self.duration_s = self.curve.end

    def shape(self, t: float, values: dict[str, float]) -> None:
        values["tank_pressure_kpa"] = round(values["tank_pressure_kpa"] + self.curve(t), 2)


class CrowdSurge(Scenario):
    name = "crowd-surge"
    family = CROWD_VENUE
    prefer_kinds = ("mall", "stadium", "scenic")
    metrics = ("occupancy", "inflow_per_min", "outflow_per_min")
    summary = "a venue fills past its capacity in a quarter of an hour, holds, then clears"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        capacity = float(site.capacity or 1000)
        goal = [1.1 * capacity]  # past capacity even where no rule watches it
        ratio = threshold_rule(self.district, CROWD_VENUE, "occupancy_ratio")
        if ratio is not None:
            goal.append(past_top(ratio, 1.3, CROWD_VENUE, "occupancy_ratio") * capacity)
        density = threshold_rule(self.district, CROWD_VENUE, "density_per_m2")
        if density is not None and site.area_m2 and ratio is None:
            goal.append(past_top(density, 3.0, CROWD_VENUE, "density_per_m2") * site.area_m2)
        self.target = float(round(min(max(goal), 3.0 * capacity)))  # a surge, not a city moving in
        self.rules_for = max((r.for_ for r in (ratio, density) if r is not None), default=0.0)
        self.share = _arc(12 * 60.0, 1.0, max(180.0, 3.0 * self.rules_for), 20 * 60.0)
        self.duration_s = self.share.end

    def shape(self, t: float, values: dict[str, float]) -> None:
        base = values["occupancy"]
        extra = max(0.0, self.target - base)
        values["occupancy"] = float(round(base + self.share(t) * extra))
        per_min = (self.share(t + 1.0) - self.share(t - 1.0)) / 2.0 * 60.0 * extra  # persons a minute
        if per_min > 0:
            values["inflow_per_min"] = round(values["inflow_per_min"] + per_min, 1)
        else:
            values["outflow_per_min"] = round(values["outflow_per_min"] - per_min, 1)


class CoBuildup(Scenario):
    name = "co-buildup"
    family = UNDERGROUND
    prefer_kinds = ("shelter", "garage", "basement")
    metrics = ("co_ppm", "co2_ppm", "o2_pct")
    summary = "the ventilation of a shelter fails with a generator running: CO climbs past the red level, CO₂ rises"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        co = threshold_rule(self.district, UNDERGROUND, "co_ppm")
        co2 = threshold_rule(self.district, UNDERGROUND, "co2_ppm")
        self.co_peak = past_top(co, 220.0, UNDERGROUND, "co_ppm")
        if co2 is None:
            self.co2_peak = 2000.0
        else:
            bounds = [b for _, b in co2.ordered_levels]
            self.co2_peak = (bounds[0] + bounds[1]) / 2.0 if len(bounds) > 1 else 1.3 * bounds[0]
        hold = max(hold_s(co, 180.0), hold_s(co2, 180.0))
        self.co_curve = _arc(15 * 60.0, self.co_peak, hold, 10 * 60.0)
        # Added to the background (about 600 ppm underground), so aim the increment, not the total.
        self.co2_curve = _arc(15 * 60.0, max(0.0, self.co2_peak - 600.0), hold, 10 * 60.0)
        self.duration_s = self.co_curve.end

    def shape(self, t: float, values: dict[str, float]) -> None:
        values["co_ppm"] = round(values["co_ppm"] + self.co_curve(t), 1)
        values["co2_ppm"] = float(round(values["co2_ppm"] + self.co2_curve(t)))
        # CO₂ displaces oxygen ppm for ppm: keep the two consistent.
        values["o2_pct"] = round(min(values["o2_pct"], 20.93 - (values["co2_ppm"] - 430.0) / 10_000.0), 2)


class Flooding(Scenario):
    name = "flooding"
    family = UNDERGROUND
    prefer_kinds = ("basement", "garage", "underpass")
    metrics = ("water_level_cm",)
    summary = "a rainstorm runs into a basement for half an hour, water stands past the red level, pumps drain it"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        rule = threshold_rule(self.district, UNDERGROUND, "water_level_cm")
        self.peak = past_top(rule, 60.0, UNDERGROUND, "water_level_cm")
        self.curve = _arc(30 * 60.0, self.peak, hold_s(rule, 600.0), 30 * 60.0)
        self.duration_s = self.curve.end

    def shape(self, t: float, values: dict[str, float]) -> None:
        values["water_level_cm"] = round(values["water_level_cm"] + self.curve(t), 1)
