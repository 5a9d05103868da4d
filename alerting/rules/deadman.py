"""Deadman rules: a device (or, with ``per: site``, a whole site) that has gone silent.

- A unit (a device, or a site) is known once anything arrives from it (a reading or a
  status), once it is restored as firing, or when the caller introduces it with ``know``
  (e.g. devices seen before a restart). Unknown devices cannot be missed.
- Silence is event time: the sweep's ``now_ms`` minus the newest reading's timestamp. A rule
  fires when the silence is strictly longer than ``after``.
- An ``offline`` status fires the unit's per-device rules at once, unless a reading newer
  than the status has already arrived (the status is stale). Per-site rules wait for the
  sweep: one device going offline does not silence a site. An ``online`` status resolves
  nothing: the contract resolves on the next reading.
- Any reading resolves the unit's deadman alerts, a late one too: the device is evidently
  connected again.
"""

from __future__ import annotations

from collections.abc import Iterable

from alerting.rules.text import duration
from domain.alerts import AlertKey, Signal
from domain.config import DeadmanRule
from domain.durations import format_duration
from domain.families import FAMILIES
from domain.readings import DeviceStatus
from domain.severity import Severity

KIND = "deadman"


class Unit:
    """One watched device (or site): the engine keeps a reference in its per-device record and
    notes each reading's time here directly (``DeadmanTracker.unit``); units are never replaced."""

    __slots__ = ("family", "firing", "last_seen", "rules")

    def __init__(self, family: str, rules: tuple[DeadmanRule, ...], last_seen: int | None) -> None:
        self.family = family
        self.rules = rules
        self.last_seen = last_seen  # None: known (restored) but nothing received since
        self.firing: dict[str, Severity] = {}


def _who(site: str, device: str) -> str:
    return f"device {device} at {site}" if device else f"site {site}"


class DeadmanTracker:
    """Last-seen times per device and per site, and which deadman keys are firing."""

    def __init__(self, rules: Iterable[DeadmanRule]) -> None:
        rules = tuple(rules)
        self._per_device = {f: tuple(r for r in rules if r.per == "device" and r.family in ("*", f))
                            for f in FAMILIES}
        self._per_site = {f: tuple(r for r in rules if r.per == "site" and r.family in ("*", f))
                          for f in FAMILIES}
        self._after_ms = {r.id: round(r.after * 1000) for r in rules}
        self._units: dict[tuple[str, str], Unit] = {}  # (site, device); device "" for a site

    def seen(self, family: str, site: str, device: str, ts_ms: int, out: list[Signal]) -> None:
        """A reading arrived: note the time, resolve what was firing for the device and its site."""
        rules = self._per_device.get(family)
        if rules:
            self._touch(family, rules, site, device, ts_ms, out)
        rules = self._per_site.get(family)
        if rules:
            self._touch(family, rules, site, "", ts_ms, out)

    def unit(self, family: str, site: str, device: str) -> Unit | None:
        """The unit of a device (``device`` "" for its site) that a reading from it touches,
        created on its first one; None when no deadman rule watches such a unit. A created
        unit has seen nothing yet: the caller notes the reading (``Unit.last_seen``), and
        calls ``reporting`` when the unit is firing, as ``seen`` does."""
        rules = (self._per_site if device == "" else self._per_device).get(family)
        if not rules:
            return None
        unit = self._units.get((site, device))
        if unit is None:
            unit = self._units[(site, device)] = Unit(family, rules, None)
        return unit

    def reporting(self, unit: Unit, family: str, site: str, device: str, ts_ms: int, out: list[Signal]) -> None:
        """A reading of ``family`` arrived from a firing unit: clear each of its firing keys."""
        message = f"{_who(site, device)} reporting again"
        for rule_id in unit.firing:
            out.append(Signal.clear(AlertKey(rule_id, site, device, ""), family=family, kind=KIND,
                                    at_ms=ts_ms, message=message))
        unit.firing.clear()

    def status(self, s: DeviceStatus, out: list[Signal]) -> None:
        for rules, device in ((self._per_device.get(s.family), s.device), (self._per_site.get(s.family), "")):
            if rules and (s.site, device) not in self._units:
                self._units[(s.site, device)] = Unit(s.family, rules, s.ts_ms)
        unit = self._units.get((s.site, s.device))
        if s.online or unit is None or (unit.last_seen is not None and s.ts_ms < unit.last_seen):
            return
        for rule in unit.rules:
            if rule.id not in unit.firing:
                unit.firing[rule.id] = rule.severity
                out.append(Signal.fire(AlertKey(rule.id, s.site, s.device, ""), family=s.family, kind=KIND,
                                       at_ms=s.ts_ms, severity=rule.severity,
                                       message=f"{_who(s.site, s.device)} went offline"))

    def sweep(self, now_ms: int) -> list[Signal]:
        """Fire every rule whose unit has been silent for longer than its ``after``."""
        out: list[Signal] = []
        for (site, device), unit in self._units.items():
            if unit.last_seen is None:
                continue
            silent = now_ms - unit.last_seen
            for rule in unit.rules:
                after = self._after_ms[rule.id]
                if silent > after and rule.id not in unit.firing:
                    unit.firing[rule.id] = rule.severity
                    message = (f"no data from {_who(site, device)} for {duration(silent)} "
                               f"(after {format_duration(rule.after)})")
                    out.append(Signal.fire(AlertKey(rule.id, site, device, ""), family=unit.family, kind=KIND,
                                           at_ms=now_ms, severity=rule.severity, value=silent / 1000,
                                           threshold=rule.after, message=message))
        return out

    def restore(self, rule: DeadmanRule, family: str, site: str, device: str, severity: Severity) -> bool:
        """Mark ``rule`` firing for the unit; False if the rule does not watch such a unit."""
        per = self._per_site if device == "" else self._per_device
        rules = per.get(family, ())
        if all(r.id != rule.id for r in rules):
            return False
        unit = self._units.setdefault((site, device), Unit(family, rules, None))
        unit.firing[rule.id] = severity
        return True

    def know(self, family: str, site: str, device: str, last_seen_ms: int) -> None:
        """Introduce a device seen before (so its silence is caught without a first reading)."""
        units = ((self._per_device.get(family), (site, device)), (self._per_site.get(family), (site, "")))
        for rules, key in units:
            if not rules:
                continue
            unit = self._units.setdefault(key, Unit(family, rules, last_seen_ms))
            if unit.last_seen is None or last_seen_ms > unit.last_seen:
                unit.last_seen = last_seen_ms

    def _touch(self, family: str, rules: tuple[DeadmanRule, ...], site: str, device: str, ts_ms: int,
               out: list[Signal]) -> None:
        unit = self._units.get((site, device))
        if unit is None:
            self._units[(site, device)] = Unit(family, rules, ts_ms)
            return
        if unit.last_seen is None or ts_ms > unit.last_seen:
            unit.last_seen = ts_ms
        if unit.firing:
            self.reporting(unit, family, site, device, ts_ms, out)
