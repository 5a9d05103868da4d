"""Named incident scenarios (docs/scenarios.md) and the ``--scenario NAME[:SITE][@START]`` option."""

from __future__ import annotations

import re
from collections.abc import Collection

from domain.durations import parse_duration
from simulators.scenarios.base import (
    Injection,
    Scenario,
    ScenarioContext,
    ScenarioError,
    choose_site,
)
from simulators.scenarios.hazards import CoBuildup, CrowdSurge, Flooding, TankOverpressure, VaporLeak
from simulators.scenarios.operations import BadPayloads, DeviceSilent, NightResidency
from simulators.scenarios.supervision import ApiScenario, OverdueClimb, SelfReport

# The device incidents, then the hazard scenarios the enterprise plays through the HTTP API
# (``ApiScenario``: ``safewatch simulate`` needs ``--api`` for those).
SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (VaporLeak, TankOverpressure, CrowdSurge, CoBuildup, Flooding, NightResidency, DeviceSilent,
                BadPayloads, SelfReport, OverdueClimb)
}

_SPEC = re.compile(r"^(?P<name>[a-z0-9-]+)(?::(?P<site>[A-Za-z0-9_-]{1,64}))?(?:@(?P<start>\S+))?$")


def parse_scenario(spec: str, ctx: ScenarioContext, avoid: Collection[str] = ()) -> Scenario:
    """``vapor-leak``, ``vapor-leak:GS-003`` or ``vapor-leak:GS-003@2m`` (start in simulated time).

    Without a site, the first suitable site not in ``avoid`` is chosen.
    """
    m = _SPEC.match(spec.strip())
    if m is None:
        raise ScenarioError(f"--scenario {spec!r}: expected NAME[:SITE][@START], e.g. vapor-leak:GS-001@2m")
    cls = SCENARIOS.get(m["name"])
    if cls is None:
        raise ScenarioError(f"--scenario {spec}: unknown scenario {m['name']!r} "
                            f"(expected one of {', '.join(SCENARIOS)})")
    start_s = 0.0
    if m["start"] is not None:
        try:
            start_s = parse_duration(m["start"])
        except ValueError as err:
            raise ScenarioError(f"--scenario {spec}: {err}") from None
    return cls(ctx, choose_site(ctx.district, cls, m["site"], spec, avoid), start_s)


def scenario_list() -> str:
    """One line per scenario, for ``safewatch simulate --list-scenarios``."""
    width = max(len(n) for n in SCENARIOS)
    return "\n".join(f"{name:<{width}}  {_target(cls):<11}  {cls.summary}" for name, cls in SCENARIOS.items())


def _target(cls: type[Scenario]) -> str:
    return "any (API)" if issubclass(cls, ApiScenario) else cls.family or "any"


__all__ = ["SCENARIOS", "ApiScenario", "Injection", "Scenario", "ScenarioContext", "ScenarioError",
           "parse_scenario", "scenario_list"]
