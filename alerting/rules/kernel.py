"""What threshold and trend rules (and the API's ``/trend``) share, each defined once:

- the direction sign: a rule's bounds and readings are multiplied by it, so one ``>`` serves
  ``above`` and ``below``;
- ``passed``: a value is past a bound when it is *strictly* beyond it in the rule's direction
  (the "not yet passed" check of a forecast is its negation);
- ``minutes_to_reach``: when a line reaches a bound;
- ``upcoming``: the forecast of a threshold rule's levels from a fitted line, levels already
  passed by the newest reading left out;
- ``ScheduleGate``: ``schedule.between`` on event time; outside it a rule does not fire and
  a firing key clears with one message. ``next_change`` says how long the gate stays as it
  is, so a tracker that cannot change until then need not be stepped (see ``base.Tracker``).
"""

from __future__ import annotations

from alerting.rules.clock import LocalClock
from alerting.rules.text import quantity
from domain.config import Schedule, ThresholdRule
from domain.severity import Severity

MS_PER_MIN = 60_000.0
_NEVER_MS = 1 << 62  # an epoch-ms instant no reading reaches


def direction_sign(direction: str) -> float:
    """+1 for ``above`` (a bound approached from below), -1 for ``below``."""
    if direction == "above":
        return 1.0
    if direction == "below":
        return -1.0
    raise ValueError(f"direction={direction!r}: expected above or below")


def passed(sign: float, value: float, bound: float) -> bool:
    """Whether ``value`` is strictly beyond ``bound`` in the direction ``sign``."""
    return sign * (value - bound) > 0


def minutes_to_reach(sign: float, bound: float, slope_per_min: float, anchor: float) -> float | None:
    """Minutes until a line at ``anchor`` moving ``slope_per_min`` reaches ``bound``.

    ``sign`` is +1 for a bound approached from below (direction above), -1 from above.
    0 when it is already there or past, None when it moves away or stands still.
    """
    gap = sign * (bound - anchor)
    if gap <= 0:
        return 0.0
    closing = sign * slope_per_min
    return gap / closing if closing > 0 else None


def crossings(rule: ThresholdRule, slope_per_min: float, anchor: float, anchor_ts_ms: int
              ) -> list[tuple[Severity, float, int | None]]:
    """For each level of ``rule`` (lowest first): (severity, bound, epoch ms when the line from
    ``anchor`` at ``anchor_ts_ms`` reaches it); ``anchor_ts_ms`` for a bound already reached,
    None for one never reached."""
    sign = direction_sign(rule.direction)
    out: list[tuple[Severity, float, int | None]] = []
    for severity, bound in rule.ordered_levels:
        minutes = minutes_to_reach(sign, bound, slope_per_min, anchor)
        eta = None if minutes is None else anchor_ts_ms + round(minutes * MS_PER_MIN)
        out.append((severity, bound, eta))
    return out


def upcoming(rule: ThresholdRule, slope_per_min: float, fitted: float, fitted_ts_ms: int, newest: float
             ) -> list[tuple[Severity, float, int | None]]:
    """``crossings`` from the fitted line, without the levels the newest reading has already
    passed: the ETA comes from the line, "not yet passed" from the reading, as the trend rule
    decides its forecast."""
    sign = direction_sign(rule.direction)
    return [c for c in crossings(rule, slope_per_min, fitted, fitted_ts_ms) if not passed(sign, newest, c[1])]


class ScheduleGate:
    """A rule's ``schedule.between`` on the local time of each reading (always open without one)."""

    __slots__ = ("_clock", "_label", "_schedule", "_unit")

    def __init__(self, schedule: Schedule | None, clock: LocalClock, label: str, unit: str) -> None:
        self._schedule, self._clock, self._label, self._unit = schedule, clock, label, unit

    def closed(self, ts_ms: int) -> bool:
        """True outside the schedule: the rule does not fire and a firing key clears."""
        s = self._schedule
        return s is not None and not s.active_at(self._clock.minute_of_day(ts_ms))

    def next_change(self, ts_ms: int) -> int:
        """An instant after ``ts_ms`` before which ``closed`` answers as it does at ``ts_ms``.

        The next local minute at which the window opens or shuts, under the offset of
        ``ts_ms``'s 15-minute UTC bucket, and no later than that bucket's end (where the
        offset may change: the step there asks again). Without a schedule, never."""
        s = self._schedule
        if s is None:
            return _NEVER_MS
        clock = self._clock
        offset = clock.offset_ms(ts_ms)
        local = ts_ms + offset
        minute = local // 60_000 % 1440
        start, end = s.minutes
        target = end if s.active_at(minute) else start
        # Whole minutes until the local clock reads ``target`` (a full day when it reads it now,
        # which only an empty window ``HH:MM-HH:MM`` with equal ends allows).
        ahead = (target - minute) % 1440 or 1440
        boundary = ts_ms - local % 60_000 + ahead * 60_000
        return min(boundary, clock.bucket_end(ts_ms))

    def clear_message(self, value: float) -> str:
        between = self._schedule.between if self._schedule is not None else ""
        return f"{self._label} {quantity(value, self._unit)}: outside schedule {between}"
