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

from alerting.rules.clock import LocalClock
from alerting.rules.kernel import ScheduleGate, direction_sign
from alerting.rules.text import metric_label, metric_unit, num, quantity
from domain.alerts import AlertKey, Signal
from domain.config import ThresholdRule
from domain.families import FAMILIES
from domain.severity import Severity

KIND = "threshold"
_NEVER = -float("inf")  # an ``idle`` no finite value is at or under


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

    __slots__ = ("idle", "key", "level", "pending_since", "severity", "sign", "spec")

    def __init__(self, spec: ThresholdSpec, key: AlertKey) -> None:
        self.spec = spec
        self.key = key
        self.level = -1
        self.severity: Severity | None = None  # what was last signalled (or restored)
        self.pending_since: int | None = None
        self.sign = spec.sign
        self.idle = spec.first if spec.gate is None else _NEVER

    def reidle(self) -> None:
        """Recompute ``idle`` after level or pending_since changed.

        ``idle`` is the signed value at or under which a step changes nothing and returns
        None (ungated, not firing, not pending: the common reading); -inf while there is no
        such value. The engine skips the call when ``value * sign <= idle``.
        """
        sp = self.spec
        quiet = sp.gate is None and self.level < 0 and self.pending_since is None
        self.idle = sp.first if quiet else _NEVER

    def step(self, value: float, ts_ms: int) -> Signal | None:
        signal = self._step(value, ts_ms)
        self.reidle()
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
        self.reidle()

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
