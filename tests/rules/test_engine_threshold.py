"""Threshold rules: levels in both directions, strict bounds, hysteresis, ``for``, schedules."""

from __future__ import annotations

import pytest

from tests.rules.engine_harness import Case, R, local, run_case

VAPOR = ("{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, "
         "levels: {blue: 10, yellow: 20, orange: 25, red: 50}")
O2 = "{id: lvl, kind: threshold, family: underground, metric: o2_pct, direction: below, "

CASES = [
    Case("above: every level up, then every level down, then clear", VAPOR + "}", [
        (R(0, 5), []),
        (R(1, 11), ["lvl fire blue"]),
        (R(2, 21), ["lvl fire yellow"]),
        (R(3, 26), ["lvl fire orange"]),
        (R(4, 51), ["lvl fire red"]),
        (R(5, 60), []),
        (R(6, 30), ["lvl fire orange"]),
        (R(7, 22), ["lvl fire yellow"]),
        (R(8, 15), ["lvl fire blue"]),
        (R(9, 3), ["lvl clear"]),
        (R(10, 4), []),
    ]),
    Case("below: every level down, then back up skipping a level",
         O2 + "levels: {blue: 19.5, yellow: 19, orange: 18, red: 16}}", [
        (R(0, 20.9), []),
        (R(1, 19.4), ["lvl fire blue"]),
        (R(2, 18.9), ["lvl fire yellow"]),
        (R(3, 17.9), ["lvl fire orange"]),
        (R(4, 15.0), ["lvl fire red"]),
        (R(5, 18.5), ["lvl fire yellow"]),
        (R(6, 20.5), ["lvl clear"]),
    ]),
    Case("straight to red and straight back to nothing", VAPOR + "}", [
        (R(0, 0), []),
        (R(1, 99), ["lvl fire red"]),
        (R(2, 0), ["lvl clear"]),
    ]),
    Case("above: a value exactly at a bound has not passed it",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10, red: 50}}", [
        (R(0, 10), []),
        (R(1, 10.01), ["lvl fire blue"]),
        (R(2, 50), []),
        (R(3, 50.01), ["lvl fire red"]),
        (R(4, 10), ["lvl clear"]),
    ]),
    Case("below: a value exactly at a bound has not passed it", O2 + "levels: {red: 18}}", [
        (R(0, 18), []),
        (R(1, 17.99), [("lvl fire red", "O2 17.99 % below red (18)")]),
        (R(2, 18), ["lvl clear"]),
    ]),
    Case("hysteresis above: holds inside the band, clears exactly at bound - hysteresis",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10, yellow: 20},"
         " hysteresis: 2}", [
        (R(0, 10.5), ["lvl fire blue"]),
        (R(1, 8.01), []),
        (R(2, 8), [("lvl clear", "hysteresis 2")]),
        (R(3, 9), []),  # inside the band, but not firing: entering needs the bound itself
        (R(4, 10), []),
        (R(5, 10.01), ["lvl fire blue"]),
        (R(6, 20.5), ["lvl fire yellow"]),
        (R(7, 18.01), []),
        (R(8, 18), ["lvl fire blue"]),
        (R(9, 19.9), []),  # back up needs yellow's bound, not bound - hysteresis
        (R(10, 20.01), ["lvl fire yellow"]),
        (R(11, 7.9), ["lvl clear"]),
    ]),
    Case("hysteresis below: clears exactly at bound + hysteresis",
         O2 + "levels: {yellow: 19, red: 17}, hysteresis: 0.5}", [
        (R(0, 18.9), ["lvl fire yellow"]),
        (R(1, 16.9), ["lvl fire red"]),
        (R(2, 17.49), []),
        (R(3, 17.5), ["lvl fire yellow"]),
        (R(4, 19.49), []),
        (R(5, 19.5), ["lvl clear"]),
    ]),
    Case("for: fires on the reading at exactly `for` after the level was first passed",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10}, for: 10s}", [
        (R(0, 12), []),
        (R(5, 13), []),
        (R(9.999, 12), []),
        (R(10, 12), ["lvl fire blue"]),
        (R(11, 12), []),
    ]),
    Case("for: a reading that passes no level restarts the pending period",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10}, for: 10s}", [
        (R(0, 12), []),
        (R(5, 8), []),
        (R(6, 12), []),
        (R(15, 12), []),
        (R(16, 12), ["lvl fire blue"]),
    ]),
    Case("for: only the first firing waits; escalation and de-escalation are immediate",
         "{id: lvl, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10, red: 50},"
         " for: 10s}", [
        (R(0, 60), []),
        (R(10, 15), ["lvl fire blue"]),  # fires at the level it has when the period is over
        (R(11, 60), ["lvl fire red"]),
        (R(12, 15), ["lvl fire blue"]),
        (R(13, 5), ["lvl clear"]),
        (R(14, 60), []),  # after a clear the pending period starts over
        (R(23, 60), []),
        (R(24, 60), ["lvl fire red"]),
    ]),
    Case("binary metric with a red level at 0.5",
         "{id: leak, kind: threshold, family: gas_station, metric: leak, levels: {red: 0.5}}", [
        (R(0, 0), []),
        (R(1, 1), [("leak fire red", "leak detected (red)")]),
        (R(2, 1), []),
        (R(3, 0), [("leak clear", "leak cleared")]),
    ]),
    Case("schedule across midnight in Asia/Shanghai (local time, not UTC)",
         "{id: night, kind: threshold, family: underground, metric: occupancy, levels: {yellow: 0},"
         " schedule: {between: '23:00-06:00'}}", [
        (R(local(7, 0), 5), []),  # 23:00 UTC: would fire if the engine read UTC
        (R(local(22, 59), 3), []),
        (R(local(23, 0), 3), [("night fire yellow", "occupancy 3 persons above yellow (0)")]),
        (R(local(2, 0, day=1), 0), ["night clear"]),
        (R(local(3, 0, day=1), 1), ["night fire yellow"]),
        (R(local(5, 59, day=1), 2), []),
        (R(local(6, 0, day=1), 2), [("night clear", "outside schedule 23:00-06:00")]),
        (R(local(12, 0, day=1), 9), []),
        (R(local(23, 59, day=1), 1), ["night fire yellow"]),
    ]),
    Case("schedule within a day: leaving the window drops a pending period",
         "{id: day, kind: threshold, family: gas_station, metric: vapor_lel, levels: {blue: 10}, for: 60s,"
         " schedule: {between: '08:00-18:00'}}", [
        (R(local(7, 59, 30), 12), []),
        (R(local(8, 0), 12), []),
        (R(local(8, 1), 12), ["day fire blue"]),
        (R(local(17, 59, 30), 12), []),
        (R(local(18, 0), 12), ["day clear"]),
        (R(local(8, 0, day=1), 12), []),
        (R(local(8, 0, 59, day=1), 12), []),
        (R(local(8, 1, day=1), 12), ["day fire blue"]),
    ]),
    Case("each device is its own alert", VAPOR + "}", [
        (R(0, 30), ["lvl fire orange"]),
        (R(1, 30, device="d2"), ["lvl[d2] fire orange"]),
        (R(2, 0), ["lvl clear"]),
        (R(3, 60, device="d2"), ["lvl[d2] fire red"]),
        (R(4, 0), []),
    ]),
    Case("two rules on one metric are judged independently, in config order",
         f"[{VAPOR}}}, {{id: hi, kind: threshold, family: gas_station, metric: vapor_lel, levels: {{red: 40}}}}]", [
        (R(0, 45), ["lvl fire orange", "hi fire red"]),
        (R(1, 5), ["lvl clear", "hi clear"]),
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_threshold(case: Case) -> None:
    run_case(case)
