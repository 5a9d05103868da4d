"""Trend rules: least-squares slope over a time window, and the early-warning forecast.

- Each key keeps a fixed-size ring of its recent points and running sums (Σt, Σv, Σt², Σtv)
  over them, so every reading costs O(1): the slope needs no pass over the window. Times
  are minutes from a per-key origin; the sums are rebuilt from the ring every ``capacity``
  insertions (or when it empties) so rounding drift and a growing origin never build up.
- The ring holds at most ``max(128, min_points)`` points per window: points arriving
  closer together than ``window / capacity`` are left out of the fit (the newest value is
  still used for the "still below the bound" check and the message).
- With fewer than ``min_points`` points in the window the trend is undetermined and the
  key keeps its state: a gap or a restart does not clear an alert it cannot judge.
- Fires (at the rule's ``severity``) when ``slope > slope_above`` or ``slope < slope_below``,
  or when the fitted line reaches the forecast rule's level bound within ``within`` while
  the newest value has not passed that bound yet (``kernel.passed``); clears when neither holds. The signal's
  ``threshold`` is the forecast bound when the forecast holds, else the slope limit.

Between two changes of its window a key's line stands still, so most readings cannot change
its state: ``TrendTracker.requiet`` works out until when (``base.Tracker``), and the engine
skips those readings.

``fit_trend`` and ``kernel.upcoming`` are the same arithmetic for the API's ``/trend``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from alerting.rules.clock import LocalClock
from alerting.rules.kernel import MS_PER_MIN, ScheduleGate, crossings, direction_sign, minutes_to_reach, passed
from alerting.rules.ring import Ring
from alerting.rules.text import duration, metric_label, metric_unit, num, quantity, rate
from domain.alerts import AlertKey, Signal
from domain.config import ThresholdRule, TrendRule
from domain.severity import Severity

KIND = "trend"
MIN_CAPACITY = 128  # points per window at least (service.bench.district sizes its noise by it)
_MS_PER_MIN = MS_PER_MIN
# A tracker's cached line is stale: the sums changed since it was solved.
_STALE: tuple[float, float] = (float("nan"), float("nan"))
_INF = float("inf")
# Slack on the forecast's due time, relative to the size of the terms it is computed from:
# far more than the few ulps by which ``eta_ms``'s own arithmetic can differ from it.
_DUE_SLACK = 1e-9


class Fit(NamedTuple):
    slope_per_min: float
    value_at_last: float  # the fitted line at the newest point's time
    last_ts_ms: int
    last_value: float
    points: int


def _solve(n: int, st: float, sv: float, stt: float, stv: float) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line from its sums; None if the times do not spread."""
    den = n * stt - st * st
    if n < 2 or den <= 1e-12 * n * stt:
        return None
    slope = (n * stv - st * sv) / den
    return slope, (sv - slope * st) / n


def fit_trend(points: Sequence[tuple[float, float]]) -> Fit | None:
    """Least-squares line through ``(ts_ms, value)`` points, slope per minute.

    Non-finite values are skipped; None when fewer than two points at distinct times remain.
    """
    if len(points) < 2:
        return None
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    arr = arr[np.isfinite(arr).all(axis=1)]
    if len(arr) < 2:
        return None
    newest = int(np.argmax(arr[:, 0]))
    last_ts, last_value = arr[newest]
    t = (arr[:, 0] - last_ts) / _MS_PER_MIN
    v = arr[:, 1]
    line = _solve(len(arr), float(t.sum()), float(v.sum()), float(t @ t), float(t @ v))
    if line is None:
        return None
    slope, intercept = line
    return Fit(slope, intercept, int(last_ts), float(last_value), len(arr))


def forecast_crossings(
    rule: ThresholdRule, slope_per_min: float, last_value: float, last_ts_ms: int
) -> list[tuple[Severity, float, int | None]]:
    """For each level of ``rule`` (lowest first): (severity, bound, epoch ms when reached);
    ``kernel.crossings`` under the name the engine's tests know."""
    return crossings(rule, slope_per_min, last_value, last_ts_ms)


class TrendSpec:
    """A trend rule compiled once: window sizes in ms, the forecast's bound resolved."""

    def __init__(self, rule: TrendRule, target: ThresholdRule | None, clock: LocalClock) -> None:
        self.rule = rule
        self.rule_id = rule.id
        self.family = rule.family
        self.window_ms = round(rule.window * 1000)
        self.min_points = rule.min_points
        self.capacity = max(MIN_CAPACITY, rule.min_points)
        self.spacing_ms = self.window_ms / self.capacity
        # Ring timestamps are whole ms, so "at least spacing_ms after the newest" is "at least
        # this many whole ms after": an exact integer to compare reading times with.
        self.spacing_whole_ms = math.ceil(self.spacing_ms)
        self.slope_above = rule.slope_above
        self.slope_below = rule.slope_below
        self.severity = rule.severity
        self.label = metric_label(rule.metric)
        self.unit = metric_unit(rule.family, rule.metric)
        self.gate = None if rule.schedule is None else ScheduleGate(rule.schedule, clock, self.label, self.unit)
        self.forecast_level: Severity | None = None
        self.forecast_bound = 0.0
        self.forecast_sign = 1.0
        self.within_ms = 0.0
        if rule.forecast is not None and target is not None:
            self.forecast_level = rule.forecast.level
            self.forecast_bound = target.levels[rule.forecast.level.label]
            self.forecast_sign = direction_sign(target.direction)
            self.within_ms = rule.forecast.within * 1000

    def tracker(self, key: AlertKey) -> TrendTracker:
        return TrendTracker(self, key)

    def slope_limit(self, slope: float) -> float | None:
        """The slope limit ``slope`` is beyond, if any."""
        if self.slope_above is not None and slope > self.slope_above:
            return self.slope_above
        if self.slope_below is not None and slope < self.slope_below:
            return self.slope_below
        return None

    def eta_ms(self, value: float, slope: float, fitted: float) -> float | None:
        """Time until the forecast bound if it is due within ``within`` and not yet passed."""
        if self.forecast_level is None or passed(self.forecast_sign, value, self.forecast_bound):
            return None
        minutes = minutes_to_reach(self.forecast_sign, self.forecast_bound, slope, fitted)
        if minutes is None or minutes * _MS_PER_MIN > self.within_ms:
            return None
        return minutes * _MS_PER_MIN

    def forecast_due(self, slope: float, intercept: float, origin: float, ts_ms: int) -> float:
        """A time before which ``eta_ms`` is None for every reading on this line (the line
        ``intercept + slope * minutes since origin``), given a reading at ``ts_ms``; -inf when
        it may not be None already. Conservative by a margin, so never later than the truth.

        ``eta_ms`` is not None once the fitted value is within ``within`` of the bound at the
        line's closing speed: ``(G - closing * u) / closing * MS <= within`` with ``G`` the
        gap at the origin and ``u`` the minutes since it, i.e. from
        ``origin + G / closing * MS - within`` on. A line not closing in never gets there
        while it is short of the bound; one already past it is due now.
        """
        if self.forecast_level is None:
            return _INF
        sign = self.forecast_sign
        gap0 = sign * (self.forecast_bound - intercept)
        closing = sign * slope
        scale = abs(self.forecast_bound) + abs(intercept)
        if closing <= 0:
            # The gap never shrinks: still short of the bound now, it stays so (``minutes_to_reach``
            # None); the margin keeps rounding near a zero gap out of it.
            u = (ts_ms - origin) / _MS_PER_MIN
            gap = gap0 - closing * u
            return _INF if gap > _DUE_SLACK * (scale + abs(slope * u)) else -_INF
        span = gap0 / closing * _MS_PER_MIN
        due = origin + span - self.within_ms
        if not math.isfinite(due):  # a closing speed so slow the division overflowed
            return _INF if due > 0 else -_INF
        return due - 1.0 - _DUE_SLACK * (abs(span) + abs(due - origin) + scale * _MS_PER_MIN / closing)

    def describe(self, value: float, slope: float) -> str:
        word = "rising" if slope > 0 else "falling" if slope < 0 else "steady"
        return f"{self.label} {quantity(value, self.unit)} {word} {rate(abs(slope), self.unit)}"

    def fire_message(self, value: float, slope: float, eta_ms: float | None, limit: float | None) -> str:
        head = self.describe(value, slope)
        if eta_ms is not None:
            when = "now" if eta_ms < 1000 else f"in {duration(eta_ms)}"
            return f"{head}, {self.forecast_level} ({num(self.forecast_bound)}) expected {when}"
        side = "above" if limit == self.slope_above else "below"
        return f"{head} (slope {side} {rate(limit or 0.0, self.unit)})"


class TrendTracker:
    __slots__ = ("hi", "key", "last_ts", "last_value", "line", "lo", "origin", "pushes", "ring", "severity",
                 "spec", "st", "stt", "stv", "sv", "until")

    def __init__(self, spec: TrendSpec, key: AlertKey) -> None:
        self.spec = spec
        self.key = key
        self.ring = Ring(spec.capacity + 1)  # +1: both ends of a full window fit
        self.severity: Severity | None = None
        self.last_ts = -1
        self.last_value = 0.0
        # The trend is judged on the line, whatever the value: quiet for every value until
        # ``until`` (``requiet``), stepped on every reading while that is -inf.
        self.lo, self.hi, self.until = -_INF, _INF, -_INF
        self.line: tuple[float, float] | None = _STALE
        self.origin = 0.0
        self.pushes = 0
        self.st = self.sv = self.stt = self.stv = 0.0

    def step(self, value: float, ts_ms: int) -> Signal | None:
        signal = self._step(value, ts_ms)
        self.requiet(ts_ms)
        return signal

    def requiet(self, ts_ms: int | None = None) -> None:
        """Until when readings cannot change this key (``base.Tracker``): the first reading
        that adds a point (``spacing_ms`` after the newest) or evicts one (past the window)
        moves the line; before that ``step`` returns None and only notes the reading's time,
        unless the line is close enough to the forecast bound for the reading's value to
        matter (``TrendSpec.forecast_due``). A scheduled rule is stepped on every reading."""
        sp, ring = self.spec, self.ring
        if sp.gate is not None or ts_ms is None or not ring.size:
            self.until = -_INF
            return
        # Whole ms throughout: ring times are whole, ``spacing_whole_ms`` too, and a point is
        # evicted by a reading more than ``window_ms`` after it.
        moves = ring.newest + sp.spacing_whole_ms
        evicts = ring.oldest + sp.window_ms + 1
        if evicts < moves:
            moves = evicts
        if ring.size < sp.min_points:
            self.until = moves  # undetermined whatever the value
            return
        line = self.line
        if line is _STALE:
            line = self.line = _solve(ring.size, self.st, self.sv, self.stt, self.stv)
        if line is None:
            self.until = moves  # the times do not spread: no line, nothing judged
            return
        slope, intercept = line
        beyond = sp.slope_limit(slope) is not None
        if self.severity is not None:
            # Firing on the slope, at the rule's severity: it holds whatever the value. Firing on
            # the forecast alone, the value decides when it clears.
            self.until = moves if beyond and self.severity == sp.severity else -_INF
            return
        if beyond:
            self.until = -_INF  # the next reading fires
            return
        if sp.forecast_level is not None:
            due = sp.forecast_due(slope, intercept, self.origin, ts_ms)
            if due < moves:
                moves = due
        self.until = moves

    def _step(self, value: float, ts_ms: int) -> Signal | None:
        if ts_ms <= self.last_ts:  # a duplicate or late point would distort the fit
            return None
        self.last_ts, self.last_value = ts_ms, value
        self._remember(value, ts_ms)
        sp = self.spec
        gate = sp.gate
        if gate is not None and gate.closed(ts_ms):
            return None if self.severity is None else self._clear(value, ts_ms, gate.clear_message(value))
        n = self.ring.size
        if n < sp.min_points:
            return None
        # Readings closer together than the ring's spacing leave the sums as they were:
        # the line solved for the last change still holds.
        line = self.line
        if line is _STALE:
            line = self.line = _solve(n, self.st, self.sv, self.stt, self.stv)
        if line is None:
            return None
        slope, intercept = line
        limit = sp.slope_limit(slope)
        eta = sp.eta_ms(value, slope, intercept + slope * (ts_ms - self.origin) / _MS_PER_MIN)
        if limit is None and eta is None:
            if self.severity is None:
                return None
            return self._clear(value, ts_ms, f"{sp.describe(value, slope)}: trend back within limits")
        if self.severity == sp.severity:
            return None
        self.severity = sp.severity
        threshold = sp.forecast_bound if eta is not None else limit
        return Signal.fire(self.key, family=sp.family, kind=KIND, at_ms=ts_ms, severity=sp.severity,
                           value=value, threshold=threshold, message=sp.fire_message(value, slope, eta, limit))

    def restore(self, severity: Severity) -> None:
        self.severity = severity
        self.until = -_INF  # judged again on the next reading

    def fit(self) -> Fit | None:
        """The least-squares line over the window as it stands (from the running sums); the
        newest reading is the newest *stepped* (the engine skips quiet ones)."""
        line = _solve(self.ring.size, self.st, self.sv, self.stt, self.stv)
        if line is None:
            return None
        slope, intercept = line
        fitted = intercept + slope * (self.last_ts - self.origin) / _MS_PER_MIN
        return Fit(slope, fitted, self.last_ts, self.last_value, self.ring.size)

    def _remember(self, value: float, ts_ms: int) -> None:
        ring, sp = self.ring, self.spec
        cutoff = ts_ms - sp.window_ms
        while ring.size and ring.oldest < cutoff:
            self._add(*ring.pop(), -1.0)
        if not ring.size:
            self._reset(ts_ms)
        elif ts_ms - ring.newest < sp.spacing_ms:
            return
        evicted = ring.push(ts_ms, value)
        if evicted is not None:
            self._add(*evicted, -1.0)
        self._add(ts_ms, value, 1.0)
        self.pushes += 1
        if self.pushes >= ring.capacity:
            self._rebase()

    def _add(self, ts_ms: float, value: float, weight: float) -> None:
        t = (ts_ms - self.origin) / _MS_PER_MIN
        self.line = _STALE
        self.st += weight * t
        self.sv += weight * value
        self.stt += weight * t * t
        self.stv += weight * t * value

    def _reset(self, origin: float) -> None:
        self.origin = origin
        self.line = _STALE
        self.pushes = 0
        self.st = self.sv = self.stt = self.stv = 0.0

    def _rebase(self) -> None:
        points = self.ring.points()
        self._reset(points[0][0])
        for ts, value in points:
            self._add(ts, value, 1.0)

    def _clear(self, value: float, ts_ms: int, message: str) -> Signal:
        self.severity = None
        return Signal.clear(self.key, family=self.spec.family, kind=KIND, at_ms=ts_ms, value=value, message=message)
