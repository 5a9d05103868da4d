"""The rule kernel: direction sign, "passed", the forecast's upcoming levels, the schedule gate."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from alerting.rules.clock import LocalClock
from alerting.rules.kernel import ScheduleGate, direction_sign, passed, upcoming
from domain.alerts import AlertKey, Signal
from domain.config import Schedule, ThresholdRule
from domain.severity import Severity

T0 = 1_764_300_000_000  # 2025-11-28 03:20 UTC = 11:20 in Shanghai
MIN = 60_000


@pytest.mark.parametrize(("direction", "value", "bound", "beyond"), [
    ("above", 10.1, 10, True), ("above", 10, 10, False), ("above", 9, 10, False),
    ("below", 9.9, 10, True), ("below", 10, 10, False), ("below", 11, 10, False),
])
def test_passed_is_strictly_beyond_in_the_rules_direction(direction: str, value: float, bound: float,
                                                          beyond: bool) -> None:
    assert passed(direction_sign(direction), value, bound) is beyond


def test_an_unknown_direction_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="direction='sideways'"):
        direction_sign("sideways")


def test_upcoming_leaves_out_levels_the_newest_reading_has_passed() -> None:
    rule = ThresholdRule.model_validate({"id": "lvl", "kind": "threshold", "family": "underground",
                                         "metric": "co_ppm", "direction": "above",
                                         "levels": {"yellow": 20, "orange": 30, "red": 50}})
    # The fitted line is at 18, but the newest reading (21) is already past yellow.
    assert upcoming(rule, 2.0, 18.0, T0, 21.0) == [(Severity.ORANGE, 30, T0 + 6 * MIN),
                                                  (Severity.RED, 50, T0 + 16 * MIN)]
    assert upcoming(rule, -1.0, 18.0, T0, 18.0) == [(Severity.YELLOW, 20, None), (Severity.ORANGE, 30, None),
                                                   (Severity.RED, 50, None)]


@pytest.mark.parametrize(("between", "ts_ms", "closed"), [
    (None, T0, False),
    ("11:00-12:00", T0, False),
    ("12:00-13:00", T0, True),
    ("23:00-12:00", T0, False),  # across midnight
    ("11:30-11:00", T0, True),
])
def test_schedule_gate(between: str | None, ts_ms: int, closed: bool) -> None:
    schedule = None if between is None else Schedule(between=between)
    gate = ScheduleGate(schedule, LocalClock(ZoneInfo("Asia/Shanghai")), "CO", "ppm")
    assert gate.closed(ts_ms) is closed
    if between is not None:
        assert gate.clear_message(3.0) == f"CO 3 ppm: outside schedule {between}"


def test_signals_are_built_with_keywords() -> None:
    key = AlertKey("r", "S", "d", "m")
    fire = Signal.fire(key, family="gas_station", kind="threshold", at_ms=T0, severity=Severity.RED, value=3.0)
    clear = Signal.clear(key, family="gas_station", kind="threshold", at_ms=T0 + 1, value=1.0, message="ok")
    assert (fire.firing, fire.severity, fire.threshold) == (True, Severity.RED, None)
    assert (clear.firing, clear.severity, clear.message) == (False, None, "ok")
