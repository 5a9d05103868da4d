"""Trend rules: slope above/below over the window, min_points, forecasts with their ETA."""

from __future__ import annotations

import pytest

from tests.rules.engine_harness import Case, R, Step, local, run_case

M = 60  # readings in these cases come once a minute

CO_LEVELS = "{id: lvl, kind: threshold, family: underground, metric: co_ppm, levels: {yellow: 50, red: 200}}"


def co_forecast(within: str) -> str:
    return (f"[{CO_LEVELS}, {{id: co-rise, kind: trend, family: underground, metric: co_ppm, window: 10m,"
            f" min_points: 5, forecast: {{rule: lvl, level: red, within: {within}}}, severity: orange}}]")




def co_ramp(minutes: int) -> list[Step]:
    """4.1 ppm/min from 45.6 ppm, one reading a minute (62 ppm at minute 4); yellow (50) at minute 2."""
    return [(R(t * M, round(45.6 + 4.1 * t, 1)), ["lvl fire yellow"] if t == 2 else []) for t in range(minutes)]


CASES = [
    Case("slope_above fires once min_points are in the window, clears when the slope eases",
         "{id: rise, kind: trend, family: underground, metric: co_ppm, window: 10m, min_points: 4,"
         " slope_above: 2, severity: orange}", [
        (R(0 * M, 10), []),
        (R(1 * M, 13), []),
        (R(2 * M, 16), []),  # 3 ppm/min already, but only 3 points
        (R(3 * M, 19), [("rise fire orange", "CO 19 ppm rising 3 ppm/min (slope above 2 ppm/min)")]),
        (R(4 * M, 19), []),  # slope 2.4
        (R(5 * M, 19), [("rise clear", "trend back within limits")]),  # slope 1.89
    ]),
    Case("slope_below fires on a falling series and clears when it turns",
         "{id: fall, kind: trend, family: underground, metric: o2_pct, window: 5m, min_points: 3,"
         " slope_below: -0.5}", [
        (R(0 * M, 20.9), []),
        (R(1 * M, 20.5), []),
        (R(2 * M, 20.0), []),  # -0.45 %/min
        (R(3 * M, 19.3), [("fall fire yellow", "O2 19.3 % falling 0.53 %/min (slope below -0.5 %/min)")]),
        (R(4 * M, 19.8), ["fall clear"]),  # -0.34 %/min
    ]),
    Case("points older than the window leave the fit",
         "{id: rise, kind: trend, family: underground, metric: co_ppm, window: 2m, min_points: 3,"
         " slope_above: 2}", [
        (R(0 * M, 10), []),
        (R(1 * M, 20), []),
        (R(2 * M, 30), ["rise fire yellow"]),
        (R(3 * M, 30), []),  # window 1..3 min: 20, 30, 30 → 5/min
        (R(4 * M, 30), ["rise clear"]),  # window 2..4 min: flat
    ]),
    Case("a gap empties the window: too few points keep the alert as it was",
         "{id: rise, kind: trend, family: underground, metric: co_ppm, window: 2m, min_points: 3,"
         " slope_above: 2}", [
        (R(0 * M, 10), []),
        (R(1 * M, 20), []),
        (R(2 * M, 30), ["rise fire yellow"]),
        (R(60 * M, 30), []),
        (R(61 * M, 30), []),
        (R(62 * M, 30), ["rise clear"]),
    ]),
    Case("forecast fires early with the expected time in the message", co_forecast("40m"), [
        *co_ramp(4),
        # red (200) is (200 - 62) / 4.1 = 33.7 minutes away
        (R(4 * M, 62.0), [("co-rise fire orange",
                           "CO 62 ppm rising 4.1 ppm/min, red (200) expected in 34 min")]),
        (R(5 * M, 120), []),
        (R(6 * M, 205), ["lvl fire red", "co-rise clear"]),  # passed: the threshold rule has it now
    ]),
    Case("forecast waits until the crossing is within `within`", co_forecast("30m"), [
        *co_ramp(5),
        (R(5 * M, 66.1), []),  # 32.7 min away
        (R(6 * M, 70.2), []),
        (R(7 * M, 74.3), []),  # 30.7 min away
        (R(8 * M, 78.4), [("co-rise fire orange", "red (200) expected in 30 min")]),  # 29.7 min
        (R(9 * M, 78.4), ["co-rise clear"]),  # slowing to 3.9 ppm/min: red 30.7 min away
    ]),
    Case("forecast for a falling metric (direction below)",
         "[{id: lvl, kind: threshold, family: underground, metric: o2_pct, direction: below,"
         "  levels: {yellow: 19.5, red: 18}},"
         " {id: o2-fall, kind: trend, family: underground, metric: o2_pct, window: 10m, min_points: 4,"
         "  forecast: {rule: lvl, level: red, within: 10m}, severity: orange}]", [
        (R(0 * M, 20.9), []),
        (R(1 * M, 20.6), []),
        (R(2 * M, 20.3), []),
        (R(3 * M, 20.0), [("o2-fall fire orange", "O2 20 % falling 0.3 %/min, red (18) expected in 7 min")]),
        (R(4 * M, 20.0), []),
        (R(5 * M, 20.0), []),
        (R(6 * M, 20.0), ["o2-fall clear"]),  # -0.15 %/min: red 13 min away
    ]),
    Case("late points do not enter the fit",
         "{id: rise, kind: trend, family: underground, metric: co_ppm, window: 10m, min_points: 3,"
         " slope_above: 2}", [
        (R(0 * M, 10), []),
        (R(1 * M, 13), []),
        (R(2 * M, 16), ["rise fire yellow"]),
        (R(1.5 * M, 0), []),  # would flatten the slope if it counted
        (R(2.5 * M, 17.5), []),
    ]),
    Case("schedule: outside the window a firing trend clears",
         "{id: rise, kind: trend, family: underground, metric: co_ppm, window: 10m, min_points: 3,"
         " slope_above: 2, schedule: {between: '08:00-18:00'}}", [
        (R(local(17, 57), 10), []),
        (R(local(17, 58), 13), []),
        (R(local(17, 59), 16), ["rise fire yellow"]),
        (R(local(18, 0), 19), [("rise clear", "outside schedule 08:00-18:00")]),
        (R(local(18, 1), 22), []),
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_trend(case: Case) -> None:
    run_case(case)
