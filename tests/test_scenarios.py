"""Scenarios without a broker: option parsing, target choice, magnitudes taken from the config's rules."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain import parse_district
from simulators.models import build_model
from simulators.scenarios import SCENARIOS, Scenario, ScenarioContext, ScenarioError, parse_scenario, scenario_list
from simulators.scenarios.hazards import VaporLeak
from simulators.scenarios.operations import BadPayloads, DeviceSilent, NightResidency
from tests.support.district import TZ, district_data

SITES = """
- {id: HALL, name: Hall, family: crowd_venue, street: main, sector: bureau, capacity: 500, area_m2: 600}
- {id: MALL, name: Mall, kind: mall, family: crowd_venue, street: main, sector: bureau, capacity: 8000,
   area_m2: 20000}
- {id: UP1, name: Underpass, kind: underpass, family: underground, street: main, sector: bureau}
- {id: SH1, name: Shelter, kind: shelter, family: underground, street: main, sector: bureau, area_m2: 900}
- {id: BS1, name: Basement, kind: basement, family: underground, street: main, sector: bureau}
"""


def base() -> dict[str, Any]:
    return district_data("scentest", SITES)


def district_with(*rules: str):
    data = base()
    data["rules"] = [yaml.safe_load(r) for r in rules]
    return parse_district(data, "<scentest>")


VAPOR = "{id: vl, family: gas_station, metric: vapor_lel, kind: threshold, levels: {blue: 10, red: 50}, hysteresis: 2}"
VAPOR_LOW = "{id: vl, family: gas_station, metric: vapor_lel, kind: threshold, levels: {blue: 4, red: 15}, for: 1m}"
VAPOR_TREND = "{id: vt, family: gas_station, metric: vapor_lel, kind: trend, window: 5m, slope_above: 1.0}"
PRESSURE = "{id: tp, family: gas_station, metric: tank_pressure_kpa, kind: threshold, levels: {blue: 2, red: 10}}"
RATIO = ("{id: r, family: crowd_venue, metric: occupancy_ratio, kind: threshold, levels: {yellow: 0.8, red: 1.2},"
         " hysteresis: 0.05}")
CO = "{id: co, family: underground, metric: co_ppm, kind: threshold, levels: {blue: 13, red: 200}, for: 30s}"
WATER = "{id: w, family: underground, metric: water_level_cm, kind: threshold, levels: {blue: 5, red: 50}}"
NIGHT = ("{id: n, family: underground, metric: occupancy, kind: threshold, levels: {yellow: 0},"
         " schedule: {between: '23:00-06:00'}}")
DEADMAN = "{id: d, kind: deadman, family: '*', after: 5m}"
ALL = district_with(VAPOR, VAPOR_TREND, PRESSURE, RATIO, CO, WATER, NIGHT, DEADMAN)


@pytest.mark.parametrize(("spec", "label", "start_s"), [
    ("vapor-leak", "vapor-leak@G1", 0.0),
    ("vapor-leak:G2", "vapor-leak@G2", 0.0),
    ("vapor-leak:G2@90s", "vapor-leak@G2", 90.0),
    ("crowd-surge", "crowd-surge@MALL", 0.0),          # a mall is preferred over the first venue
    ("co-buildup", "co-buildup@SH1", 0.0),             # a shelter
    ("flooding@1h", "flooding@BS1", 3600.0),           # a basement
    ("night-residency", "night-residency@SH1", 0.0),
    ("device-silent", "device-silent@G1", 0.0),        # any family: the first site
    ("bad-payloads:UP1", "bad-payloads@UP1", 0.0),
])
def test_scenario_option_picks_its_site_and_start(spec, label, start_s):
    sc = parse_scenario(spec, ScenarioContext(ALL))
    assert (sc.label, sc.start_s) == (label, start_s)


@pytest.mark.parametrize(("spec", "message"), [
    ("leak", "unknown scenario 'leak' (expected one of vapor-leak, "),
    ("vapor-leak:NOPE", "--scenario vapor-leak:NOPE: unknown site 'NOPE'"),
    ("vapor-leak:HALL", "site 'HALL' is a crowd_venue, vapor-leak needs a gas_station"),
    ("vapor-leak@soon", "--scenario vapor-leak@soon: malformed duration 'soon'"),
    ("vapor leak", "expected NAME[:SITE][@START]"),
])
def test_bad_scenario_options_are_refused_naming_the_option(spec, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(spec, ScenarioContext(ALL))
    assert message in str(err.value)


def test_a_family_the_config_lacks_is_refused():
    data = base()
    data["sites"] = data["sites"][:2]
    with pytest.raises(ScenarioError, match="has no underground site"):
        parse_scenario("flooding", ScenarioContext(parse_district(data, "<gas only>")))


def test_every_scenario_is_listed_and_documented():
    listing = scenario_list()
    docs = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text(encoding="utf-8")
    for name in SCENARIOS:
        assert name in listing
        assert f"## `{name}`" in docs, f"docs/scenarios.md lacks a section for {name}"
    assert docs.count("**What an operator sees**") >= len(SCENARIOS)


def dry_run(sc: Scenario, metric: str, cadence_s: float = 5.0) -> list[tuple[float, float]]:
    """(t, value of metric) over the scenario's timeline, the site model underneath, no broker."""
    model = build_model(sc.site, sc.district, 1)
    start = int(datetime(2026, 7, 1, 10, tzinfo=TZ).timestamp() * 1000)
    out = []
    t = 0.0
    while t <= sc.duration_s + 60:
        values = model.values_at(start + int(t * 1000))
        if sc.active(t):
            sc.shape(t, values)
        out.append((t, values[metric]))
        t += cadence_s
    return out


@pytest.mark.parametrize(("district", "spec", "metric", "past", "quiet_below"), [
    (ALL, "vapor-leak", "vapor_lel", 50, 10),
    (district_with(VAPOR_LOW), "vapor-leak", "vapor_lel", 15, 4),    # another district's levels
    (ALL, "tank-overpressure", "tank_pressure_kpa", 10, 2),
    (district_with(), "tank-overpressure", "tank_pressure_kpa", 40, 2),  # no rule: a plain overpressure
    (ALL, "co-buildup", "co_ppm", 200, 13),
    (ALL, "flooding", "water_level_cm", 50, 5),
])
def test_incidents_go_past_the_rule_s_top_level_and_come_back(district, spec, metric, past, quiet_below):
    sc = parse_scenario(spec, ScenarioContext(district, seed=3))
    series = dry_run(sc, metric)
    assert max(v for _, v in series) > past
    assert series[-1][1] < quiet_below, "the incident should end with the site back to normal"
    above = [t for t, v in series if v > past]
    assert above[-1] - above[0] > 60, "it should stay past the top level for a while, not flicker"


def test_vapor_leak_creeps_first_then_climbs():
    sc = parse_scenario("vapor-leak", ScenarioContext(ALL, seed=3))
    assert isinstance(sc, VaporLeak)
    series = dry_run(sc, "vapor_lel")
    creep = [(t, v) for t, v in series if t <= sc.creep_s]
    slope_per_min = (creep[-1][1] - creep[0][1]) / (creep[-1][0] - creep[0][0]) * 60
    assert 2.0 <= slope_per_min <= 4.0, "twice the trend rule's 1.0/min, slow enough to stay below blue"
    assert max(v for _, v in creep) < 10, "the creep stays below the first level"
    first_red = next(t for t, v in series if v > 50)
    assert sc.creep_s < first_red < sc.creep_s + 300


def test_crowd_surge_fills_past_capacity_and_beyond_the_red_ratio():
    sc = parse_scenario("crowd-surge", ScenarioContext(ALL, seed=3))
    occupancy = dry_run(sc, "occupancy")
    assert max(v for _, v in occupancy) / 8000 > 1.2
    inflow = dry_run(sc, "inflow_per_min")
    assert max(v for _, v in inflow) > 8000 * 1.2 / 12 * 0.8, "a surge arrives through the gates"
    assert all(v >= 0 for _, v in occupancy + inflow)


def test_device_silent_outlasts_the_deadman():
    sc = parse_scenario("device-silent:MALL", ScenarioContext(ALL))
    assert isinstance(sc, DeviceSilent)
    assert sc.silent_devices(10) == {"counter-1"}
    assert sc.silent_devices(sc.silence_s + 1) == frozenset()
    assert sc.silence_s >= 300 + 60


@pytest.mark.parametrize(("local", "offset_to"), [
    ("2026-07-01 14:00", "2026-06-30 23:30"),   # afternoon: set back to last night
    ("2026-07-01 05:40", "2026-06-30 23:30"),   # the window would end mid-scenario
    ("2026-07-01 23:10", None),                 # already night: no shift
    ("2026-07-02 00:30", None),
])
def test_night_residency_sets_the_shelter_clock_into_the_night(local, offset_to):
    sc = parse_scenario("night-residency", ScenarioContext(ALL))
    assert isinstance(sc, NightResidency)
    start = datetime.strptime(local, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)
    offset = sc.site_offset_ms(int(start.timestamp() * 1000))
    if offset_to is None:
        assert offset == 0
    else:
        shifted = datetime.fromtimestamp(start.timestamp() + offset / 1000, TZ)
        assert shifted.strftime("%Y-%m-%d %H:%M") == offset_to
    assert sc.people > 0


def test_bad_payloads_cover_every_kind_each_round():
    sc = parse_scenario("bad-payloads:G1", ScenarioContext(ALL))
    assert isinstance(sc, BadPayloads)
    one_round = sc.kinds(1_800_000_000_000, {"vapor_lel": 0.4})
    kinds = {i.kind for i in one_round}
    assert {"not-json", "not-utf8", "not-an-object", "unknown-site", "wrong-family", "unknown-metric",
            "not-a-number", "out-of-range", "future-timestamp", "bad-timestamp", "partly-valid",
            "not-binary", "bad-status"} <= kinds
    assert len(sc.injections(-1e-9, sc.duration_s, 1_800_000_000_000, {"vapor_lel": 0.4})) == 5 * len(one_round)
    assert sc.injections(10, 20, 1_800_000_000_000, {}) == []


@pytest.mark.parametrize(("kind", "reason", "kept"), [
    ("not-json", "invalid_json", 0),
    ("not-utf8", "invalid_json", 0),
    ("not-an-object", "bad_payload", 0),
    ("array-of-garbage", "bad_payload", 0),
    ("no-values", "bad_payload", 0),
    ("unknown-site", "unknown_site", 0),
    ("wrong-family", "family_mismatch", 0),
    ("unknown-metric", "unknown_metric", 0),
    ("not-a-number", "non_numeric", 0),
    ("out-of-range", "out_of_range", 0),
    ("future-timestamp", "future_timestamp", 0),
    ("bad-timestamp", "bad_timestamp", 0),
    ("partly-valid", "out_of_range", 1),       # the good value survives
    ("not-binary", "out_of_range", 0),
    ("bad-status", "bad_status", 0),
])
def test_each_bad_payload_is_refused_by_ingest_for_its_own_reason(kind, reason, kept):
    from ingest.decode import Decoder

    now = 1_800_000_000_000
    sc = parse_scenario("bad-payloads:G1", ScenarioContext(ALL))
    assert isinstance(sc, BadPayloads)
    (injection,) = [i for i in sc.kinds(now, {"vapor_lel": 0.4}) if i.kind == kind]
    decoded = Decoder(ALL).decode(injection.topic, injection.payload, now, now)
    assert [r.reason for r in decoded.rejections] == [reason]
    assert len(decoded.readings) == kept
    assert (injection.expect == "rejected") == (kept == 0)
