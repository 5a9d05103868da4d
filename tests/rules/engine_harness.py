"""Table-driven engine cases, in the manner of Alertmanager's route_test.go.

A case is an inline YAML rule list (parsed with ``domain.parse_district`` into a small
district in Asia/Shanghai), and a sequence of steps: an action (a reading, a status, a
sweep, a restore, or several readings/statuses in one batch) with the signals it must
produce, written compactly:

- ``"lvl fire orange"`` / ``"lvl clear"``: a signal of rule ``lvl`` for device ``d1``;
  another device is named in brackets (``"lvl[d2] clear"``); deadman keys always show
  their device, or the site for ``per: site`` (``"silent[d1] fire yellow"``,
  ``"silent[GS-1] clear"``).
- ``("lvl fire orange", "above orange (25)")``: the same, and the message contains the text.
- ``"unplaced gone"``: ``restore`` handed back the key of rule ``gone`` as unplaceable.

Times are seconds after local midnight of 2025-01-15 in Asia/Shanghai (``local()`` helps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from alerting.engine import Engine
from domain import Batch, DeviceStatus, District, Reading, parse_district
from domain.alerts import AlertKey, Signal
from domain.severity import Severity

TZ = ZoneInfo("Asia/Shanghai")
BASE_MS = int(datetime(2025, 1, 15, tzinfo=TZ).timestamp() * 1000)
SITE_OF = {"gas_station": "GS-1", "crowd_venue": "CV-1", "underground": "UG-1"}

DISTRICT = """
district: enginetest
timezone: Asia/Shanghai
departments: [{id: dep, name: Dep, kind: sector}]
streets: [{id: st, name: St, office: dep}]
sites:
  - {id: GS-1, name: gs, family: gas_station, street: st, sector: dep}
  - {id: CV-1, name: cv, family: crowd_venue, street: st, sector: dep, capacity: 2000, area_m2: 500}
  - {id: UG-1, name: ug, family: underground, street: st, sector: dep}
"""


def make_district(rules_yaml: str) -> District:
    data = yaml.safe_load(DISTRICT)
    rules = yaml.safe_load(rules_yaml)
    data["rules"] = rules if isinstance(rules, list) else [rules]
    return parse_district(data, "<test>")


def local(hour: int, minute: int = 0, second: float = 0, day: int = 0) -> float:
    """Seconds after the base, for a local wall-clock time on day ``day`` (0 = 2025-01-15)."""
    return day * 86400 + hour * 3600 + minute * 60 + second


def ms(t: float) -> int:
    return BASE_MS + round(t * 1000)


@dataclass(frozen=True)
class R:
    """A reading at ``t``: a bare number is the case's metric."""

    t: float
    values: float | dict[str, float]
    device: str = "d1"
    site: str | None = None


@dataclass(frozen=True)
class Status:
    t: float
    online: bool
    device: str = "d1"
    site: str | None = None


@dataclass(frozen=True)
class Sweep:
    t: float


@dataclass(frozen=True)
class Restore:
    rule: str
    severity: str
    device: str = "d1"
    metric: str | None = None  # None: the case's metric; "" for deadman keys
    site: str | None = None


Action = R | Status | Sweep | Restore | tuple[R | Status, ...]
Expected = str | tuple[str, str]
Step = tuple[Action, list[Expected]]


@dataclass
class Case:
    name: str
    rules: str
    steps: list[Step]
    metric: str = field(default="")  # default: the first rule's metric
    family: str = field(default="")

    def __str__(self) -> str:
        return self.name


def describe(sig: Signal) -> str:
    key = sig.key
    state = f"fire {sig.severity}" if sig.firing else "clear"
    if sig.kind == "deadman":
        return f"{key.rule}[{key.device or key.site}] {state}"
    return f"{key.rule} {state}" if key.device == "d1" else f"{key.rule}[{key.device}] {state}"


class Runner:
    """Feeds a case's actions to one Engine and checks what comes out."""

    def __init__(self, case: Case) -> None:
        self.district = make_district(case.rules)
        first: Any = next(iter(self.district.rules.values()))
        self.family = case.family or (first.family if first.family != "*" else "gas_station")
        self.metric = case.metric or getattr(first, "metric", "vapor_lel")
        self.engine = Engine(self.district)

    def reading(self, a: R) -> Reading:
        values = a.values if isinstance(a.values, dict) else {self.metric: a.values}
        site = a.site or SITE_OF[self.family]
        family = self.district.sites[site].family
        return Reading(family, site, a.device, "st", ms(a.t), values)

    def status(self, a: Status) -> DeviceStatus:
        site = a.site or SITE_OF[self.family]
        return DeviceStatus(self.district.sites[site].family, site, a.device, a.online, ms(a.t))

    def act(self, action: Action) -> tuple[list[str], dict[str, Signal]]:
        """The descriptions of what ``action`` produced, and the signals by description."""
        if isinstance(action, Sweep):
            signals = self.engine.sweep(ms(action.t))
        elif isinstance(action, Restore):
            metric = self.metric if action.metric is None else action.metric
            key = AlertKey(action.rule, action.site or SITE_OF[self.family], action.device, metric)
            unplaced = self.engine.restore([(key, Severity.parse(action.severity))])
            return [f"unplaced {k.rule}" for k in unplaced], {}
        else:
            parts = action if isinstance(action, tuple) else (action,)
            readings = tuple(self.reading(p) for p in parts if isinstance(p, R))
            statuses = tuple(self.status(p) for p in parts if isinstance(p, Status))
            signals = self.engine.process(Batch(readings, statuses))
        times = {ms(p.t) for p in (action if isinstance(action, tuple) else (action,))}
        for s in signals:
            assert s.at_ms in times, f"{s} is not at the time of {action}"
            rule = self.district.rules[s.key.rule]
            assert s.kind == rule.kind, s
            assert s.family == self.district.sites[s.key.site].family, s
            assert (s.severity is not None) == s.firing, s
            assert s.message, s
        return [describe(s) for s in signals], {describe(s): s for s in signals}


def run_case(case: Case) -> Engine:
    runner = Runner(case)
    for i, (action, expected) in enumerate(case.steps):
        got, by_name = runner.act(action)
        want = [e if isinstance(e, str) else e[0] for e in expected]
        assert got == want, f"step {i} {action}: expected {want}, got {got}"
        for e in expected:
            if isinstance(e, tuple):
                name, text = e
                message = by_name[name].message
                assert text in message, f"step {i} {action}: {name!r} message {message!r} lacks {text!r}"
    return runner.engine
