"""What every incident scenario shares: its target site, its timeline, and the rules it aims at.

A scenario runs on top of the normal background. Its time ``t`` is simulated seconds since
it started (negative before). It may reshape the target site's readings (``shape``), keep
some of its devices silent (``silent_devices``), publish messages of its own
(``injections``), or set the site's clock back (``site_offset_ms``). Magnitudes come from the
config's rules for the metric, so a scenario crosses the same levels in any district.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import ClassVar

from domain.config import DeadmanRule, Site, ThresholdRule, TrendRule
from domain.district import District
from domain.families import FAMILIES
from simulators.kinds import site_kind


class ScenarioError(ValueError):
    """A --scenario option that cannot run on this config; the message names the option."""


@dataclass(frozen=True, slots=True)
class ScenarioContext:
    district: District
    cadence_s: float = 5.0  # simulated seconds between two readings of one device
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Injection:
    """A message a scenario publishes itself (e.g. a malformed payload), and why."""

    kind: str
    topic: str
    payload: bytes
    expect: str  # what ingest should do with it: "rejected", "partly kept", ...


class Scenario:
    """The base of every scenario; each hook's default is to do nothing."""

    name: ClassVar[str]
    family: ClassVar[str | None]  # None: any family
    prefer_kinds: ClassVar[tuple[str, ...]] = ()  # first site of these kinds, else the family's first
    summary: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]] = ()  # the metrics ``shape`` changes
    injects: ClassVar[bool] = False  # whether it publishes messages of its own

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        self.ctx = ctx
        self.district = ctx.district
        self.site = site
        self.start_s = start_s
        self.rng = random.Random(f"{ctx.seed}:{self.name}:{site.id}") if ctx.seed is not None else random.Random()
        self.duration_s = 0.0  # set by each scenario from its timeline

    @property
    def label(self) -> str:
        return f"{self.name}@{self.site.id}"

    def active(self, t: float) -> bool:
        return 0.0 <= t <= self.duration_s

    def shape(self, t: float, values: dict[str, float]) -> None:
        """Change the target site's readings at scenario time ``t`` (in place)."""

    def silent_devices(self, t: float) -> frozenset[str]:
        return frozenset()

    def injections(self, t0: float, t1: float, now_ms: int, values: Mapping[str, float]) -> list[Injection]:
        """Messages to publish for scenario times in (t0, t1]; ``values`` are the site's current readings."""
        return []

    def site_offset_ms(self, sim_start_ms: int) -> int:
        """How far the target site's clock is set back for the whole run (0: not at all)."""
        return 0


# -- what the config says about a metric ----------------------------------------------------


def threshold_rule(district: District, family: str, metric: str, *, scheduled: bool = False) -> ThresholdRule | None:
    """The family's first threshold rule on ``metric`` (unscheduled ones, or only scheduled ones)."""
    for rule in district.rules_for(family, metric):
        if isinstance(rule, ThresholdRule) and (rule.schedule is not None) == scheduled:
            return rule
    return None


def trend_rule(district: District, family: str, metric: str) -> TrendRule | None:
    for rule in district.rules_for(family, metric):
        if isinstance(rule, TrendRule):
            return rule
    return None


def deadman_after(district: District, family: str) -> float | None:
    afters = [r.after for r in district.rules_for(family) if isinstance(r, DeadmanRule)]
    return min(afters) if afters else None


def lowest_bound(rule: ThresholdRule | None, default: float) -> float:
    return rule.ordered_levels[0][1] if rule else default


def past_top(rule: ThresholdRule | None, default: float, family: str, metric: str) -> float:
    """A value clearly past the rule's highest level (by twice its hysteresis, or 10 %), in range."""
    spec = FAMILIES[family][metric]
    if rule is None:
        return min(default, spec.high)
    top = rule.ordered_levels[-1][1]
    margin = max(2.0 * rule.hysteresis, 0.1 * abs(top)) or 1.0  # a level at 0 still needs a step past it
    value = top + margin if rule.direction == "above" else top - margin
    return min(max(value, spec.low), spec.high)


def hold_s(rule: ThresholdRule | None, at_least: float) -> float:
    """Long enough past a level for the rule's ``for`` to be met with time to spare."""
    return max(at_least, 3.0 * rule.for_) if rule else at_least


def choose_site(district: District, cls: type[Scenario], site_id: str | None, option: str,
                avoid: Collection[str] = ()) -> Site:
    """The site a scenario runs at: the one named, else the first of the right family (and kind),
    preferring sites not in ``avoid`` (so a sequence of incidents spreads over the district)."""
    family = cls.family
    if site_id is not None:
        site = district.sites.get(site_id)
        if site is None:
            raise ScenarioError(f"--scenario {option}: unknown site {site_id!r} in {district.source}")
        if family is not None and site.family != family:
            raise ScenarioError(f"--scenario {option}: site {site_id!r} is a {site.family}, "
                                f"{cls.name} needs a {family}")
        return site
    candidates = [s for s in district.sites.values() if family is None or s.family == family]
    if not candidates:
        raise ScenarioError(f"--scenario {option}: {district.source} has no {family} site")
    free = [s for s in candidates if s.id not in avoid] or candidates
    for kind in cls.prefer_kinds:
        for s in free:
            if site_kind(s) == kind:
                return s
    return free[0]
