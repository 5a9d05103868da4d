"""Device models: physically valid over long runs, quiet below every alarm, shaped by the day, reproducible."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

import pytest
import yaml

from domain import parse_district
from domain.families import FAMILIES, device_metrics
from simulators.clock import SimClock
from simulators.curves import Curve, local_minute, poisson
from simulators.kinds import site_kind
from simulators.model import site_rng
from simulators.models import MODEL_CLASSES, build_model
from simulators.quiet import SiteLimits
from tests.support.district import TZ, district_data

SITES = """
- {id: MALL, name: Some Mall, kind: mall, family: crowd_venue, street: main, sector: bureau,
   capacity: 8000, area_m2: 20000}
- {id: ARENA, name: 某体育场, family: crowd_venue, street: main, sector: bureau, capacity: 30000, area_m2: 60000}
- {id: HOSP, name: Town Hospital, family: crowd_venue, street: main, sector: bureau, capacity: 4000,
   area_m2: 9000}
- {id: PLAIN, name: Hall, family: crowd_venue, street: main, sector: bureau, capacity: 500, area_m2: 600}
- {id: SH1, name: 某人防工程, family: underground, street: main, sector: bureau, area_m2: 900}
- {id: GAR, name: Car park, kind: garage, family: underground, street: main, sector: bureau}
"""
RULES = """
- {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold, levels: {blue: 10, red: 50}, hysteresis: 2}
- {id: pressure, family: gas_station, metric: tank_pressure_kpa, kind: threshold, levels: {blue: 2, red: 10}}
- {id: overfill, family: gas_station, metric: tank_level_pct, kind: threshold, levels: {blue: 85, red: 98}}
- {id: ratio, family: crowd_venue, metric: occupancy_ratio, kind: threshold, levels: {blue: 0.7, red: 1.2},
   hysteresis: 0.05}
- {id: inflow, family: crowd_venue, metric: inflow_per_min, kind: threshold, levels: {blue: 500}}
- {id: co2, family: underground, metric: co2_ppm, kind: threshold, levels: {blue: 1000}, hysteresis: 100}
- {id: o2, family: underground, metric: o2_pct, kind: threshold, direction: below, levels: {blue: 20.0},
   hysteresis: 0.3}
- {id: humid, family: underground, metric: humidity_pct, kind: threshold, levels: {blue: 80}, hysteresis: 3}
- {id: night, family: underground, metric: occupancy, kind: threshold, levels: {yellow: 0},
   schedule: {between: "22:00-07:00"}}
"""


def config() -> dict[str, Any]:
    return district_data("simtest", SITES, RULES)


DISTRICT = parse_district(config(), "<simtest>")
START = int(datetime(2026, 7, 1, 0, 0, tzinfo=TZ).timestamp() * 1000)


def run_site(site_id: str, seed: int, hours: float, step_s: int = 30,
             start: int = START) -> list[tuple[int, dict[str, float]]]:
    model = build_model(DISTRICT.sites[site_id], DISTRICT, seed)
    return [(ts, model.values_at(ts)) for ts in range(start, start + int(hours * 3600_000), step_s * 1000)]


@pytest.mark.parametrize("family", list(MODEL_CLASSES))
def test_devices_report_every_metric_of_the_family_once(family):
    MODEL_CLASSES[family].check_layout()


@pytest.mark.parametrize("site_id", list(DISTRICT.sites))
@pytest.mark.parametrize("seed", [1, 2])
def test_two_days_stay_in_physical_range_and_in_the_quiet_band(site_id, seed):
    site = DISTRICT.sites[site_id]
    limits = SiteLimits(site, DISTRICT)
    specs = device_metrics(site.family)
    for ts, values in run_site(site_id, seed, hours=48):
        assert set(values) == set(specs)
        bands = limits.at(local_minute(ts, TZ))
        for metric, value in values.items():
            assert specs[metric].accepts(value), (site_id, ts, metric, value)
            if not specs[metric].binary:
                lo, hi = bands[metric]
                assert lo - 1e-9 <= value <= hi + 1e-9, (site_id, ts, metric, value, bands[metric])


def test_same_seed_same_readings_other_seed_other_readings():
    assert run_site("G1", 7, hours=3) == run_site("G1", 7, hours=3)
    assert run_site("G1", 7, hours=3) != run_site("G1", 8, hours=3)


def test_a_site_s_readings_do_not_depend_on_the_other_sites():
    # Each site draws from its own stream: adding or removing a site changes no other site.
    alone = parse_district({**config(), "sites": [config()["sites"][1]]}, "<one>")
    model = build_model(alone.sites["G2"], alone, 5)
    solo = [model.values_at(ts) for ts in range(START, START + 3600_000, 60_000)]
    assert solo == [v for _, v in run_site("G2", 5, hours=1, step_s=60)]


def hourly_occupancy(site_id: str) -> dict[int, float]:
    by_hour: dict[int, list[float]] = {}
    for ts, values in run_site(site_id, 3, hours=24, step_s=60):
        by_hour.setdefault(datetime.fromtimestamp(ts / 1000, TZ).hour, []).append(values["occupancy"])
    return {h: sum(v) / len(v) for h, v in by_hour.items()}


@pytest.mark.parametrize(("site_id", "busy", "quiet"), [
    ("MALL", 15, 9),        # a mall's afternoon, shut before ten
    ("ARENA", 20, 14),      # a stadium's evening event
    ("HOSP", 10, 20),       # a hospital's morning clinic
    ("PLAIN", 15, 4),       # no kind, no telling name: the default day
])
def test_venues_follow_their_kind_of_day(site_id, busy, quiet):
    occ = hourly_occupancy(site_id)
    assert occ[busy] > 3 * max(occ[quiet], 1.0), occ


def test_counters_are_consistent_and_never_negative():
    rows = run_site("ARENA", 4, hours=24, step_s=5)
    assert all(v["occupancy"] >= 0 and v["inflow_per_min"] >= 0 and v["outflow_per_min"] >= 0 for _, v in rows)
    peak = max(v["occupancy"] for _, v in rows)
    assert peak > 0.4 * 30000 * 0.7, "the event never filled the stadium"
    assert peak <= (0.7 - 0.05) * 30000, "an ordinary day must stay below the blue occupancy ratio"


def test_tank_level_falls_with_sales_and_jumps_at_a_delivery():
    rows = run_site("G1", 11, hours=72, step_s=60)
    levels = [v["tank_level_pct"] for _, v in rows]
    hourly = levels[::60]
    drops = sum(1 for a, b in itertools.pairwise(hourly) if b < a)
    assert drops > 0.8 * len(hourly), "sales should draw the tank down in most hours"
    jumps = [b - a for a, b in zip(levels[::30], levels[30::30], strict=False)]  # half-hour changes
    assert max(jumps) > 20, "a tanker should have refilled the tank within three days"
    assert max(levels) <= 85 - 2, "a delivery must stop below the overfill alarm"


def test_underground_night_is_empty_inside_the_rule_window_and_gases_cycle_with_the_fans():
    rows = run_site("GAR", 9, hours=24, step_s=60)
    for ts, v in rows:
        minute = local_minute(ts, TZ)
        if minute >= 22 * 60 or minute < 7 * 60:
            assert v["occupancy"] == 0
    co = [v["co_ppm"] for _, v in rows]
    assert max(co) - min(co) > 1.0, "ventilation cycles should move CO"
    assert all(20.3 <= v["o2_pct"] <= 21.1 for _, v in rows)


@pytest.mark.parametrize(("site", "expected"), [
    ({"name": "西单大悦城", "family": "crowd_venue"}, "mall"),
    ({"name": "梅兰芳大剧院", "family": "crowd_venue"}, "theatre"),
    ({"name": "北京展览馆剧场", "family": "crowd_venue"}, "theatre"),
    ({"name": "先农坛体育场", "family": "crowd_venue"}, "stadium"),
    ({"name": "北京大学人民医院（门急诊楼）", "family": "crowd_venue"}, "hospital"),
    ({"name": "地铁西单站", "family": "crowd_venue"}, "station"),
    ({"name": "北海公园", "family": "crowd_venue"}, "scenic"),
    ({"name": "Anything", "kind": "Stadium", "family": "crowd_venue"}, "stadium"),
    ({"name": "Anything", "kind": "cinema", "family": "crowd_venue"}, "theatre"),
    ({"name": "Anything", "family": "crowd_venue"}, "default"),
    ({"name": "百万庄人防工程", "family": "underground"}, "shelter"),
    ({"name": "某在建地下车库", "family": "underground"}, "garage"),
    ({"name": "住宅楼地下室", "family": "underground"}, "basement"),
    ({"name": "Station Road underpass", "family": "underground"}, "underpass"),
])
def test_site_kind_from_the_kind_key_else_the_name(site, expected):
    from domain.config import Site

    full = {"id": "X1", "street": "main", "sector": "bureau", "capacity": 10, "area_m2": 10} | site
    assert site_kind(Site.model_validate(full)) == expected


@pytest.mark.parametrize(("site_id", "minute", "metric", "band"), [
    ("G1", 600, "vapor_lel", (0.0, 8.0)),               # blue 10 minus hysteresis 2
    ("G1", 600, "tank_pressure_kpa", (-100.0, 1.96)),   # blue 2 minus 2 %
    ("MALL", 600, "occupancy", (0.0, 0.65 * 8000)),     # ratio blue 0.7 minus 0.05, times capacity
    ("MALL", 600, "inflow_per_min", (0.0, 490.0)),
    ("SH1", 600, "o2_pct", (20.4, 100.0)),              # below-rule: floor at blue 20.0 plus 2 %
    ("SH1", 600, "occupancy", (0.0, 100000.0)),         # the night rule is off at 10:00
    ("SH1", 23 * 60, "occupancy", (0.0, 0.0)),          # and on at 23:00
    ("SH1", 600, "smoke", (0.0, 1.0)),                  # binary: never clamped
])
def test_quiet_bands_come_from_the_rules(site_id, minute, metric, band):
    lo, hi = SiteLimits(DISTRICT.sites[site_id], DISTRICT).at(minute)[metric]
    assert (lo, hi) == pytest.approx(band)


@pytest.mark.parametrize(("trend", "metric", "wanted", "allowed"), [
    (None, "o2_pct", 0.02, 0.02),
    ("{id: t, family: underground, metric: o2_pct, kind: trend, window: 10m, slope_below: -0.1}", "o2_pct", 0.02,
     0.005),
    ("{id: t, family: underground, metric: co_ppm, kind: trend, window: 10m, slope_above: 2.0}", "co_ppm", 0.2, 0.1),
    ("{id: t, family: underground, metric: co_ppm, kind: trend, window: 10m, slope_above: 10}", "co_ppm", 0.2, 0.2),
])
def test_trend_rules_bound_the_sensor_noise(trend, metric, wanted, allowed):
    data = config()
    data["rules"] = [yaml.safe_load(trend)] if trend else []
    district = parse_district(data, "<noise>")
    assert SiteLimits(district.sites["SH1"], district).noise(metric, wanted) == pytest.approx(allowed)


def test_a_fresh_start_gives_trend_rules_nothing_to_fire_on():
    # A trend rule may fire on its first min_points readings: the background's slope over any
    # five readings 5 s apart must stay well inside the slope limits of the rules in RULES.
    rules = {"o2_pct": -0.1, "co_ppm": 2.0, "water_level_cm": 0.5}
    data = config()
    data["rules"] += [{"id": f"t-{m}", "family": "underground", "metric": m, "kind": "trend", "window": "10m",
                       ("slope_below" if s < 0 else "slope_above"): s} for m, s in rules.items()]
    district = parse_district(data, "<trends>")
    for seed in range(5):
        model = build_model(district.sites["GAR"], district, seed)
        rows = [model.values_at(START + i * 5000) for i in range(720)]  # an hour, fans on and off
        for i in range(len(rows) - 4):
            for metric, limit in rules.items():
                ys = [r[metric] for r in rows[i:i + 5]]
                slope = sum((k - 2) * y for k, y in enumerate(ys)) / 10 * 12  # per minute, 5 s apart
                assert abs(slope) < abs(limit), (seed, i, metric, ys)


def test_physical_ranges_are_the_contract_s():
    limits = SiteLimits(DISTRICT.sites["SH1"], DISTRICT)
    assert limits.physical()["co2_ppm"] == (FAMILIES["underground"]["co2_ppm"].low, 100_000)


class FakeTime:
    def __init__(self, wall: float) -> None:
        self.wall0, self.elapsed = wall, 0.0

    def wall(self) -> float:
        return self.wall0 + self.elapsed

    def mono(self) -> float:
        return self.elapsed


@pytest.mark.parametrize(("speed", "lead_s", "after_s", "expect_offset_s", "rate"), [
    (1.0, 0, 10, 0, 1.0),           # real time: the wall clock
    (10.0, 900, 50, -450, 10.0),    # 900 s behind, gaining 9 s a second: 450 s behind after 50 s
    (10.0, 900, 100, 0, 1.0),       # caught up after 100 s, then real time, never ahead
    (10.0, 900, 500, 0, 1.0),
    (0.5, 0, 100, -50, 0.5),        # slow motion falls behind
])
def test_clock_runs_fast_from_the_past_and_never_passes_the_wall_clock(speed, lead_s, after_s, expect_offset_s, rate):
    t = FakeTime(1_800_000_000.0)
    clock = SimClock(speed, int((t.wall0 - lead_s) * 1000), wall=t.wall, monotonic=t.mono)
    t.elapsed = after_s
    assert clock.now_ms() - t.wall() * 1000 == pytest.approx(expect_offset_s * 1000, abs=1)
    assert clock.rate() == rate


def test_clock_for_a_run_of_known_length_ends_at_now():
    clock = SimClock.for_run(30.0, 20.0)
    # 29 simulated seconds gained per real second, for 20 s: it starts 580 s in the past.
    assert clock.start_ms == pytest.approx(time.time() * 1000 - 29 * 20 * 1000, abs=200)
    assert clock.real_seconds_until(clock.now_ms() + 3000) == pytest.approx(0.1, abs=0.02)
    with pytest.raises(ValueError, match="--speed 0"):
        SimClock(0)


def test_curve_and_poisson():
    c = Curve([(0, 0), (10, 100), (20, 100)])
    assert [c(-5), c(5), c(15), c(25)] == [0, 50, 100, 100]
    with pytest.raises(ValueError, match="in order"):
        Curve([(1, 0), (0, 1)])
    rng = site_rng(1, "x")
    for mean in (0.0, 0.5, 12.0, 400.0):
        draws = [poisson(rng, mean) for _ in range(4000)]
        assert min(draws) >= 0
        assert sum(draws) / len(draws) == pytest.approx(mean, rel=0.08, abs=0.05)
