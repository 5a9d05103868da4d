"""Threshold rules: four levels in either direction, ``for``, hysteresis, schedules.

Semantics (contract section 2, Alertmanager/Prometheus where the contract is silent):

- A level is *passed* when the value is strictly beyond its bound (``> bound`` above,
  ``< bound`` below), so ``levels: {yellow: 0}`` fires from the first person, not at zero.
- ``for`` is a pending period before the *first* firing: some level must stay passed on
  every reading for ``for`` (a reading at exactly ``for`` fires); a reading that passes no
  level restarts it. Once firing, moves to a higher level are immediate, as Prometheus
  applies ``for`` only to the transition to firing; waiting again would delay a red alert
  behind a pending timer that already proved the condition real.
- Hysteresis works on the way down only: the current level (and every level below it)
  holds until the value is back past its bound by ``hysteresis``, i.e. clears at exactly
  ``bound - hysteresis`` (above) / ``bound + hysteresis`` (below); upward moves need the
  bound itself. The alert moves down a level or resolves only through that band.
- Outside ``schedule.between`` (local time of the reading in the district's timezone) the
  rule does not fire, a pending period is dropped and a firing alert clears.
"""

from __future__ import annotations

import math

from alerting.rules.clock import LocalClock
from alerting.rules.kernel import ScheduleGate, direction_sign
from alerting.rules.text import metric_label, metric_unit, num, quantity
from domain.alerts import AlertKey, Signal
from domain.config import ThresholdRule
from domain.families import FAMILIES
from domain.severity import Severity

KIND = "threshold"
_INF = float("inf")
_LOUD = (_INF, -_INF)  # a value band nothing is in: every reading is stepped
Band = tuple[float, float]  # (lo, hi): the readings ``lo <= value <= hi``


def _band(sign: float, after: float, upto: float) -> Band:
    """The values whose signed ``x = value * sign`` has ``after < x <= upto``, as an inclusive
    band: the strict end becomes the next float, so the band is exact (``x`` is exact too,
    ``sign`` being ±1). ``after`` -inf and ``upto`` inf leave that side open."""
    if sign > 0:
        return (-_INF if after == -_INF else math.nextafter(after, _INF)), upto
    return -upto, (_INF if after == -_INF else math.nextafter(-after, -_INF))


class ThresholdSpec:
    """A threshold rule compiled for the per-reading path.

    Bounds are stored multiplied by the direction's sign so one ``>`` serves both
    directions; the reading is multiplied by the same sign.
    """

    def __init__(self, rule: ThresholdRule, clock: LocalClock) -> None:
        self.rule = rule
        self.rule_id = rule.id
        self.family = rule.family
        self.above = rule.direction == "above"
        self.sign = direction_sign(rule.direction)
        levels = rule.ordered_levels
        self.severities: tuple[Severity, ...] = tuple(s for s, _ in levels)
        self.bounds: tuple[float, ...] = tuple(b for _, b in levels)
        self.signed: tuple[float, ...] = tuple(self.sign * b for b in self.bounds)
        self.first = self.signed[0]
        self.hysteresis = rule.hysteresis
        self.for_ms = round(rule.for_ * 1000)
        spec = FAMILIES.get(rule.family, {}).get(rule.metric)
        self.binary = spec is not None and spec.binary
        self.label = metric_label(rule.metric)
        self.unit = metric_unit(rule.family, rule.metric)
        # None without a schedule, so the common reading pays one attribute test, not a call.
        self.gate = None if rule.schedule is None else ScheduleGate(rule.schedule, clock, self.label, self.unit)
        # Where a step changes nothing (see ``ThresholdTracker.requiet``), per state, computed once.
        # Not firing and not pending: no level is passed.
        self.quiet_idle = _band(self.sign, -_INF, self.first)
        # Pending: some level is passed (the period runs on).
        self.quiet_pending = _band(self.sign, self.first, _INF)
        # Firing at level j: ``level(x, j)`` is j while x is above j's bound less the hysteresis
        # and passes no higher bound.
        h = self.hysteresis
        self.quiet_firing: tuple[Band, ...] = tuple(
            _band(self.sign, b - h, min(self.signed[j + 1:], default=_INF)) for j, b in enumerate(self.signed))

    def tracker(self, key: AlertKey) -> ThresholdTracker:
        return ThresholdTracker(self, key)

    def level(self, x: float, current: int) -> int:
        """The highest level index the signed value ``x`` holds, -1 for none.

        Levels at or below ``current`` (the firing level, -1 when not firing) hold until
        passed back by the hysteresis; higher ones need their bound.
        """
        signed, h = self.signed, self.hysteresis
        for j in range(len(signed) - 1, -1, -1):
            b = signed[j]
            if x > b or (j <= current and x > b - h):
                return j
        return -1

    def fire_message(self, value: float, j: int) -> str:
        sev = self.severities[j]
        if self.binary:
            return f"{self.label} detected ({sev})"
        side = "above" if self.above else "below"
        return f"{self.label} {quantity(value, self.unit)} {side} {sev} ({num(self.bounds[j])})"

    def clear_message(self, value: float) -> str:
        if self.binary:
            return f"{self.label} cleared"
        band = f", hysteresis {num(self.hysteresis)}" if self.hysteresis else ""
        lowest = f"{self.severities[0]} {num(self.bounds[0])}"
        return f"{self.label} back to {quantity(value, self.unit)} ({lowest}{band})"


class ThresholdTracker:
    """One key's threshold state: the firing level (-1 for none) and the pending start."""

    __slots__ = ("hi", "key", "level", "lo", "pending_since", "severity", "spec", "until")

    def __init__(self, spec: ThresholdSpec, key: AlertKey) -> None:
        self.spec = spec
        self.key = key
        self.level = -1
        self.severity: Severity | None = None  # what was last signalled (or restored)
        self.pending_since: int | None = None
        self.lo, self.hi, self.until = -_INF, _INF, -_INF
        self.requiet()

    def requiet(self, ts_ms: int | None = None) -> None:
        """Recompute where a step would do nothing (``base.Tracker``) after level,
        severity or pending_since changed; ``ts_ms`` is the last reading's time (None:
        unknown, and a scheduled rule is then stepped on its next reading).

        - not firing, not pending: no level passed (the common reading);
        - pending: a level still passed, until the ``for`` period is served;
        - firing at level j with j's severity signalled: the same level holds;
        - outside a schedule, not firing: anything, until the schedule opens; inside it,
          as without one until it shuts.
        """
        sp = self.spec
        gate = sp.gate
        until = _INF
        if gate is not None:
            if ts_ms is None:
                self.lo, self.hi = _LOUD
                return
            if gate.closed(ts_ms):
                # A closed gate drops a pending period and clears a firing level at once, so
                # after a step here neither is left and every value is a no-op until it opens.
                quiet = self.level < 0 and self.pending_since is None
                self.lo, self.hi = (-_INF, _INF) if quiet else _LOUD
                self.until = gate.next_change(ts_ms)
                return
            until = gate.next_change(ts_ms)
        if self.level < 0:
            if self.pending_since is None:
                self.lo, self.hi = sp.quiet_idle
            else:
                self.lo, self.hi = sp.quiet_pending
                until = min(until, self.pending_since + sp.for_ms)
        elif sp.severities[self.level] == self.severity:
            self.lo, self.hi = sp.quiet_firing[self.level]
        else:  # restored at a severity the config's levels do not have: the next step reports
            self.lo, self.hi = _LOUD
        self.until = until

    def step(self, value: float, ts_ms: int) -> Signal | None:
        signal = self._step(value, ts_ms)
        self.requiet(ts_ms)
        return signal

    def _step(self, value: float, ts_ms: int) -> Signal | None:
        sp = self.spec
        gate = sp.gate
        if gate is not None and gate.closed(ts_ms):
            self.pending_since = None
            return None if self.level < 0 else self._clear(value, ts_ms, gate.clear_message(value))
        x = value * sp.sign
        if self.level < 0:
            if x <= sp.first:  # the common case: quiet and not firing
                self.pending_since = None
                return None
            if sp.for_ms:
                if self.pending_since is None:
                    self.pending_since = ts_ms
                if ts_ms - self.pending_since < sp.for_ms:
                    return None
                self.pending_since = None
            return self._fire(sp.level(x, -1), value, ts_ms)
        j = sp.level(x, self.level)
        if j < 0:
            return self._clear(value, ts_ms, sp.clear_message(value))
        if j == self.level and sp.severities[j] == self.severity:
            return None
        return self._fire(j, value, ts_ms)

    def restore(self, severity: Severity) -> None:
        # If the config's levels changed since, sit at the nearest level at or below the
        # restored one; the next reading then reports the real level as a change.
        below = [j for j, s in enumerate(self.spec.severities) if s <= severity]
        self.level = below[-1] if below else 0
        self.severity = severity
        self.pending_since = None
        self.requiet()

    def _fire(self, j: int, value: float, ts_ms: int) -> Signal:
        sp = self.spec
        self.level = j
        self.severity = sp.severities[j]
        return Signal.fire(self.key, family=sp.family, kind=KIND, at_ms=ts_ms, severity=self.severity,
                           value=value, threshold=sp.bounds[j], message=sp.fire_message(value, j))

    def _clear(self, value: float, ts_ms: int, message: str) -> Signal:
        self.level = -1
        self.severity = None
        return Signal.clear(self.key, family=self.spec.family, kind=KIND, at_ms=ts_ms, value=value, message=message)
