"""Engine state across time: derived metrics, late data, restore after a restart, latest values."""

from __future__ import annotations

import math

import pytest

from alerting.engine import Engine
from domain import Batch, Reading
from domain.alerts import AlertKey
from domain.severity import Severity
from tests.rules.engine_harness import Case, R, Restore, Sweep, local, make_district, ms, run_case

VAPOR = ("{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, "
         "levels: {blue: 10, yellow: 20, orange: 25, red: 50}")
RISE = ("{id: rise, kind: trend, family: underground, metric: co_ppm, window: 10m, min_points: 3,"
        " slope_above: 2, severity: orange}")
SILENT = "{id: silent, kind: deadman, family: '*', after: 2m}"

CASES = [
    Case("derived occupancy_ratio (capacity 2000) is judged like a device metric",
         "{id: full, kind: threshold, family: crowd_venue, metric: occupancy_ratio,"
         " levels: {yellow: 0.8, red: 0.95}}", [
        (R(0, {"occupancy": 1500}), []),
        (R(1, {"occupancy": 1700}), [("full fire yellow", "occupancy ratio 0.85 above yellow (0.8)")]),
        (R(2, {"occupancy": 1950}), ["full fire red"]),
        (R(3, {"inflow_per_min": 40}), []),  # no occupancy, nothing derived
        (R(4, {"occupancy": 100}), ["full clear"]),
    ]),
    Case("derived density_per_m2 (area 500 m²)",
         "{id: dense, kind: threshold, family: crowd_venue, metric: density_per_m2, levels: {orange: 3}}", [
        (R(0, {"occupancy": 1400}), []),
        (R(1, {"occupancy": 1600}), [("dense fire orange", "3.2 persons/m² above orange (3)")]),
    ]),
    Case("a late reading moves no state", VAPOR + "}", [
        (R(10, 60), ["lvl fire red"]),
        (R(5, 0), []),
        (R(11, 60), []),
        (R(11, 60), []),  # a redelivered duplicate changes nothing either
        (R(12, 0), ["lvl clear"]),
    ]),
    Case("a late reading does not complete a pending period",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10}, for: 10s}", [
        (R(10, 12), []),
        (R(30, 12, device="d2"), []),
        (R(25, 12), ["lvl fire blue"]),  # d1's own series: 15 s after its first
        (R(20, 0), []),
        (R(26, 12), []),
    ]),
    Case("restored key: the same level stays quiet, a clear condition clears", VAPOR + "}", [
        (Restore("lvl", "orange"), []),
        (R(0, 30), []),
        (R(1, 5), ["lvl clear"]),
    ]),
    Case("restored key: the first reading clears it at once", VAPOR + "}", [
        (Restore("lvl", "red"), []),
        (R(0, 0), [("lvl clear", "vapor back to 0 %LEL (blue 10)")]),
    ]),
    Case("restored key at another level reports the change", VAPOR + ", for: 1m}", [
        (Restore("lvl", "orange"), []),
        (R(0, 60), ["lvl fire red"]),  # no pending period again: it was firing already
    ]),
    Case("restored key with hysteresis holds inside the band", VAPOR + ", hysteresis: 2}", [
        (Restore("lvl", "blue"), []),
        (R(0, 9), []),
        (R(1, 8), ["lvl clear"]),
    ]),
    Case("restored severity the rule no longer has becomes the nearest level",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {yellow: 20}}", [
        (Restore("lvl", "red"), []),
        (R(0, 30), ["lvl fire yellow"]),
    ]),
    Case("restored scheduled key clears outside its window",
         "{id: night, kind: threshold, family: underground, metric: occupancy, levels: {yellow: 0},"
         " schedule: {between: '23:00-06:00'}}", [
        (Restore("night", "yellow"), []),
        (R(local(7, 0), 3), ["night clear"]),
    ]),
    Case("restored derived key", "{id: full, kind: threshold, family: crowd_venue, metric: occupancy_ratio,"
         " levels: {yellow: 0.8}}", [
        (Restore("full", "yellow"), []),
        (R(0, {"occupancy": 1700}), []),
        (R(1, {"occupancy": 10}), ["full clear"]),
    ]),
    Case("restored trend waits for min_points, then clears on a flat series", RISE, [
        (Restore("rise", "orange"), []),
        (R(0, 10), []),
        (R(60, 10), []),
        (R(120, 10), ["rise clear"]),
    ]),
    Case("restored trend still rising fires no duplicate", RISE, [
        (Restore("rise", "orange"), []),
        (R(0, 10), []),
        (R(60, 20), []),
        (R(120, 30), []),
        (R(180, 40), []),
    ]),
    Case("restored deadman: the sweep does not fire again, a reading clears", SILENT, [
        (Restore("silent", "yellow", metric=""), []),
        (Sweep(10_000), []),
        (R(10_001, 1), ["silent[d1] clear"]),
        (Sweep(10_122), ["silent[d1] fire yellow"]),
    ]),
    Case("restored per-site deadman",
         "{id: silent, kind: deadman, family: '*', after: 2m, per: site}", [
        (Restore("silent", "yellow", device="", metric=""), []),
        (Sweep(10_000), []),
        (R(10_001, 1), ["silent[GS-1] clear"]),
    ]),
    Case("keys the config cannot place are handed back", f"[{VAPOR}}}, {SILENT}]", [
        (Restore("gone", "red"), ["unplaced gone"]),
        (Restore("lvl", "red", site="nowhere"), ["unplaced lvl"]),
        (Restore("lvl", "red", metric="tank_temp_c"), ["unplaced lvl"]),
        (Restore("lvl", "red", site="UG-1", metric="vapor_lel"), ["unplaced lvl"]),
        (Restore("silent", "red", metric="vapor_lel"), ["unplaced silent"]),
        (Restore("silent", "red", device=""), ["unplaced silent"]),  # a per-device rule has no site key
        (R(0, 0), []),
    ]),
    Case("non-finite values are skipped", VAPOR + "}", [
        (R(0, 60), ["lvl fire red"]),
        (R(1, math.nan), []),
        (R(2, math.inf), []),
        (R(3, 0), ["lvl clear"]),
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_state(case: Case) -> None:
    run_case(case)


def reading(t: float, device: str, values: dict[str, float], site: str = "CV-1") -> Reading:
    return Reading("crowd_venue", site, device, "st", ms(t), values)


def test_latest_keeps_the_newest_value_per_metric_with_its_device_and_derived_values() -> None:
    engine = Engine(make_district("{id: silent, kind: deadman, after: 1m}"))
    assert engine.latest("CV-1") == {}
    engine.process(Batch((
        reading(10, "c1", {"occupancy": 1000, "inflow_per_min": 12}),
        reading(20, "c2", {"inflow_per_min": 30}),
        reading(15, "c1", {"inflow_per_min": 99, "outflow_per_min": 7}),  # late for inflow only
    )))
    latest = engine.latest("CV-1")
    assert latest == {
        "occupancy": (1000, ms(10), "c1"),
        "occupancy_ratio": (0.5, ms(10), "c1"),
        "density_per_m2": (2.0, ms(10), "c1"),
        "inflow_per_min": (30, ms(20), "c2"),
        "outflow_per_min": (7, ms(15), "c1"),
    }
    latest["occupancy"] = (0, 0, "x")  # a copy: callers cannot disturb the engine
    assert engine.latest("CV-1")["occupancy"] == (1000, ms(10), "c1")


def test_a_fire_signal_carries_value_threshold_key_and_time() -> None:
    engine = Engine(make_district(VAPOR + ", for: 10s}"))
    gs = "gas_station"
    assert engine.process(Batch((Reading(gs, "GS-1", "d1", "st", ms(0), {"vapor_lel": 26.5}),))) == []
    [fire] = engine.process(Batch((Reading(gs, "GS-1", "d1", "st", ms(10), {"vapor_lel": 27.25}),)))
    assert fire.key == AlertKey("lvl", "GS-1", "d1", "vapor_lel")
    assert (fire.family, fire.kind, fire.firing, fire.at_ms) == (gs, "threshold", True, ms(10))
    assert (fire.severity, fire.value, fire.threshold) == (Severity.ORANGE, 27.25, 25)
    assert fire.message == "vapor 27.25 %LEL above orange (25)"
    [clear] = engine.process(Batch((Reading(gs, "GS-1", "d1", "st", ms(11), {"vapor_lel": 1}),)))
    assert (clear.firing, clear.severity, clear.value, clear.at_ms) == (False, None, 1, ms(11))
