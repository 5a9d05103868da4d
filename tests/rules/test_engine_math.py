"""The arithmetic under the rules: line fits, forecasts, the ring, local time of day."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerting.rules import fit_trend, forecast_crossings, minutes_to_reach
from alerting.rules.clock import LocalClock
from alerting.rules.ring import Ring
from alerting.rules.text import duration
from alerting.rules.trend import TrendSpec, TrendTracker
from domain.alerts import AlertKey
from domain.config import ThresholdRule, TrendRule
from domain.severity import Severity

MIN = 60_000
T0 = 1_736_870_400_000


@pytest.mark.parametrize(("points", "slope", "at_last", "n"), [
    ([(T0 + i * MIN, 45.6 + 4.1 * i) for i in range(5)], 4.1, 62.0, 5),
    ([(T0 + 3 * MIN, 62.0), (T0, 49.7), (T0 + MIN, 53.8), (T0 + 2 * MIN, 57.9)], 4.1, 62.0, 4),  # any order
    ([(T0, 1.0), (T0 + 30_000, 3.0), (T0 + MIN, 1.0)], 0.0, 5 / 3, 3),
    ([(T0, 20.0), (T0 + 2 * MIN, 19.0), (T0 + 4 * MIN, float("nan")), (T0 + 4 * MIN, 18.0)], -0.5, 18.0, 3),
])
def test_fit_trend(points: list[tuple[float, float]], slope: float, at_last: float, n: int) -> None:
    fit = fit_trend(points)
    assert fit is not None
    assert fit.slope_per_min == pytest.approx(slope, abs=1e-9)
    assert fit.value_at_last == pytest.approx(at_last, abs=1e-9)
    assert fit.points == n
    assert fit.last_ts_ms == max(t for t, v in points if v == v)


@pytest.mark.parametrize("points", [
    [], [(T0, 1.0)], [(T0, 1.0), (T0, 2.0)], [(T0, 1.0), (T0 + MIN, float("inf"))],
])
def test_fit_trend_needs_two_distinct_times(points: list[tuple[float, float]]) -> None:
    assert fit_trend(points) is None


@pytest.mark.parametrize(("sign", "bound", "slope", "anchor", "minutes"), [
    (1.0, 200, 4, 62, 34.5),
    (1.0, 200, 4, 200, 0.0),  # at the bound: reached
    (1.0, 200, 4, 250, 0.0),
    (1.0, 200, -4, 62, None),  # moving away
    (1.0, 200, 0, 62, None),
    (-1.0, 18, -0.3, 20, 6.666666666666667),
    (-1.0, 18, 0.3, 20, None),
])
def test_minutes_to_reach(sign: float, bound: float, slope: float, anchor: float,
                          minutes: float | None) -> None:
    assert minutes_to_reach(sign, bound, slope, anchor) == (pytest.approx(minutes) if minutes else minutes)


def threshold(direction: str, levels: dict[str, float]) -> ThresholdRule:
    return ThresholdRule.model_validate({"id": "lvl", "kind": "threshold", "family": "underground",
                                         "metric": "co_ppm", "direction": direction, "levels": levels})


def test_forecast_crossings_above_and_below() -> None:
    up = threshold("above", {"blue": 10, "yellow": 20, "red": 50})
    assert forecast_crossings(up, 2.0, 15.0, T0) == [
        (Severity.BLUE, 10, T0), (Severity.YELLOW, 20, T0 + 150_000), (Severity.RED, 50, T0 + 17.5 * MIN)]
    assert forecast_crossings(up, -1.0, 15.0, T0) == [
        (Severity.BLUE, 10, T0), (Severity.YELLOW, 20, None), (Severity.RED, 50, None)]
    down = threshold("below", {"yellow": 19.5, "red": 18})
    assert forecast_crossings(down, -0.5, 20.0, T0) == [
        (Severity.YELLOW, 19.5, T0 + MIN), (Severity.RED, 18, T0 + 4 * MIN)]


def test_ring_keeps_the_newest_points_in_order() -> None:
    ring = Ring(3)
    assert ring.push(1, 10) is None and ring.push(2, 20) is None and ring.push(3, 30) is None
    assert ring.push(4, 40) == (1, 10)  # full: the oldest makes room
    assert ring.points() == [(2, 20), (3, 30), (4, 40)]
    assert (ring.oldest, ring.newest, ring.size) == (2, 4, 3)
    assert ring.pop() == (2, 20)
    ring.push(5, 50)
    assert ring.points() == [(3, 30), (4, 40), (5, 50)]
    ring.clear()
    with pytest.raises(IndexError):
        ring.pop()
    with pytest.raises(ValueError, match="capacity must be at least 1, got 0"):
        Ring(0)


def test_running_sums_match_a_full_fit_over_a_long_irregular_series() -> None:
    # Thousands of points: the window slides, thins dense bursts and rebases its sums many times.
    rule = TrendRule.model_validate({"id": "t", "kind": "trend", "family": "underground", "metric": "co_ppm",
                                     "window": "5m", "min_points": 3, "slope_above": 1e9})
    spec = TrendSpec(rule, None, LocalClock(ZoneInfo("UTC")))
    tracker = TrendTracker(spec, AlertKey("t", "s", "d", "co_ppm"))
    rng = random.Random(7)
    ts, value = T0, 50.0
    for i in range(20_000):
        ts += rng.choice((200, 1000, 5000, 60_000)) if i % 500 else 20 * MIN
        value += rng.uniform(-1, 1.2)
        tracker.step(value, ts)
        if i % 997 == 0 or i == 19_999:
            live, full = tracker.fit(), fit_trend(tracker.ring.points())
            assert (live is None) == (full is None)
            if live is not None and full is not None:
                assert live.slope_per_min == pytest.approx(full.slope_per_min, rel=1e-6, abs=1e-9)
                assert live.points == full.points
                assert all(ts - t <= 5 * MIN for t, _ in tracker.ring.points())


@pytest.mark.parametrize(("zone", "utc", "minute"), [
    ("Asia/Shanghai", "2025-01-14T15:00:00", 23 * 60),
    ("Asia/Shanghai", "2025-01-14T16:00:00", 0),
    ("Asia/Kathmandu", "2025-01-14T18:14:00", 23 * 60 + 59),  # UTC+5:45
    ("Europe/Berlin", "2025-03-30T00:59:00", 1 * 60 + 59),  # just before the spring-forward
    ("Europe/Berlin", "2025-03-30T01:00:00", 3 * 60),
    ("Europe/Berlin", "2025-10-26T00:59:00", 2 * 60 + 59),  # first 02:59, summer time
    ("Europe/Berlin", "2025-10-26T01:59:00", 2 * 60 + 59),  # second 02:59, winter time
])
def test_local_minute_of_day(zone: str, utc: str, minute: int) -> None:
    ts_ms = int(datetime.fromisoformat(utc + "+00:00").timestamp() * 1000)
    clock = LocalClock(ZoneInfo(zone))
    assert clock.minute_of_day(ts_ms) == minute
    assert clock.minute_of_day(ts_ms) == minute  # from the cached offset


@pytest.mark.parametrize(("ms", "text"), [
    (400, "0 s"), (45_000, "45 s"), (60_000, "1 min"), (34 * MIN + 20_000, "34 min"),
    (119 * MIN, "119 min"), (125 * MIN, "2 h 5 min"), (180 * MIN, "3 h"),
])
def test_duration_wording(ms: float, text: str) -> None:
    assert duration(ms) == text
