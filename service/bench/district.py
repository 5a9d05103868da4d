"""The district a bench run loads: the synthetic one, or an operator's config plus a latency probe.

Either way the result is a config file for ``serve`` and a load plan: every (site, device)
series with the values its messages carry. For an operator's config (``--config``) each
message carries every metric a rule of its family reads (the source of a derived metric
too), so every rule is evaluated; values stay inside the metric's valid range and on the
quiet side of every level, except on one series in ``CROSSING_EVERY``, which sits past the
lowest level of one threshold rule (so alerts fire and the book is written, as in a district).
A probe site and a probe rule (a level at the top of one metric's range, which no quiet value
reaches) are added for the alert-latency probe.

The probe's alerts cost the same in every district, so districts compare on their rules alone:
its level is the lowest severity (``blue``), and under an operator's config the probe site has a
street and sector department of its own. Otherwise the config's routing fans each of them out
(Xicheng: sector, street office, and for a red one safety bureau, safety committee and fire:
five MQTT publishes and outbox rows instead of one) and lists it as a hazard, once a second.

A metric a trend rule reads carries only as much noise as cannot make a trend: the bench
measures the steady state, where sensors vary slowly, not alert churn. Without this cap a
short run's first few window points (``window / 128`` apart, a few seconds) fit slopes many
times a rule's limit, and tens of trend alerts fire and resolve each run, each a book
transaction, outbox rows, MQTT publishes and a hazard: a cost of the load, not of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alerting.rules.trend import MIN_CAPACITY
from domain.config import Site, ThresholdRule, TrendRule
from domain.derived import scale as derived_scale
from domain.derived import source_of
from domain.district import District, load_district
from domain.families import FAMILIES, device_metrics

Profile = tuple[tuple[str, float, float], ...]  # (metric, base, spread): value = base ± spread/2
SeriesPlan = tuple[str, str, str, Profile]  # (family, site, device, profile)
PROBE_SITE = "PROBE"  # the synthetic district's (tests count readings without it)
CONFIG_PROBE_SITE = "BENCH-PROBE"  # added to an operator's config
PROBE_RULE = "bench-probe"
PROBE_DEPARTMENT = "bench-probe"  # also the probe site's street, under an operator's config
PROBE_LEVEL = "blue"  # the lowest severity: routed and listed as little as a config allows
DEVICES_PER_SITE = 2
CROSSING_EVERY = 10
# The least-squares slope of noise bounded by ±w/2 over points at least Δ apart is at most w/Δ
# (two points, the worst case); noise is kept to half a trend rule's limit by that bound.
TREND_NOISE_SHARE = 0.5
ROUNDING = 0.001  # the load writes values with three decimals (service.bench.load)

# The synthetic district's readings: three metrics per family, well inside every range.
_SYNTHETIC: dict[str, Profile] = {
    "gas_station": (("vapor_lel", 2.0, 1.5), ("tank_pressure_kpa", 4.0, 2.0), ("tank_temp_c", 18.0, 4.0)),
    "crowd_venue": (("occupancy", 800.0, 400.0), ("inflow_per_min", 40.0, 20.0),
                    ("outflow_per_min", 38.0, 20.0)),
    "underground": (("co_ppm", 5.0, 3.0), ("o2_pct", 20.8, 0.2), ("temp_c", 16.0, 3.0)),
}


@dataclass(frozen=True)
class Probe:
    """Where the latency probe publishes and whom its alert is routed to."""

    family: str
    site: str
    metric: str
    value: float
    department: str


@dataclass(frozen=True)
class BenchDistrict:
    config: Path  # what serve is started with
    name: str
    series: list[SeriesPlan]
    probe: Probe
    rules: int
    crossing: int  # series whose values sit past a level


def write_config(path: Path, district: str, sites: int) -> Path:
    """A config with ``sites`` sites spread over the three families, and one probe rule."""
    families = ("gas_station", "crowd_venue", "underground")
    lines = [f"district: {district}", "timezone: UTC",
             "departments: [{id: bench_sector, name: Sector, kind: sector}, "
             "{id: bench_office, name: Office, kind: territorial}]",
             "streets: [{id: s1, name: Street, office: bench_office}]", "sites:"]
    for n in range(sites):
        fam = families[n % 3]
        extra = ", capacity: 5000, area_m2: 2000" if fam == "crowd_venue" else ""
        lines.append(f"  - {{id: S-{n:04d}, name: Site {n}, family: {fam}, street: s1, sector: bench_sector{extra}}}")
    lines += [f"  - {{id: {PROBE_SITE}, name: Probe, family: gas_station, street: s1, sector: bench_sector}}",
              "rules:",
              f"  - {{id: {PROBE_RULE}, family: gas_station, metric: vapor_lel, kind: threshold, "
              f"levels: {{{PROBE_LEVEL}: 50}}}}",
              "routing:", "  - {match: {}, notify: [sector]}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def synthetic(data: Path, sites: int = 300) -> BenchDistrict:
    data.mkdir(parents=True, exist_ok=True)
    config = write_config(data / "config.yaml", "bench", sites)
    district = load_district(config)
    series: list[SeriesPlan] = [(s.family, s.id, f"d{n}", _SYNTHETIC[s.family]) for s in district.sites.values()
              if s.id != PROBE_SITE for n in range(1, DEVICES_PER_SITE + 1)]
    probe = Probe("gas_station", PROBE_SITE, "vapor_lel", 60.0, "bench_sector")
    return BenchDistrict(config, district.name, series, probe, len(district.rules), 0)


def from_config(source: Path, data: Path) -> BenchDistrict:
    """``source`` with a probe site, rule and route added, written to ``data``; its load plan."""
    original = load_district(source)  # a bad config fails here, naming the file
    data.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = yaml.safe_load(source.read_text())
    first = next(iter(original.sites.values()), None)
    if first is None:
        raise ValueError(f"{source}: sites: the bench needs at least one site to load")
    metric, spec = next((m, s) for m, s in device_metrics(first.family).items() if not s.binary)
    level = spec.high - (spec.high - spec.low) * 0.01
    department = PROBE_DEPARTMENT
    doc["departments"].append({"id": department, "name": "Bench latency probe", "kind": "sector"})
    # Its own street, whose office is the same department: "sector" and "street" routes reach only it.
    doc["streets"].append({"id": department, "name": "Bench latency probe", "office": department})
    raw_first = next(s for s in doc["sites"] if s["id"] == first.id)
    doc["sites"].append(raw_first | {"id": CONFIG_PROBE_SITE, "name": "Bench latency probe",
                                     "street": department, "sector": department})
    doc["rules"].append({"id": PROBE_RULE, "family": first.family, "metric": metric, "kind": "threshold",
                         "direction": "above", "levels": {PROBE_LEVEL: level}})
    doc.setdefault("routing", []).append({"match": {"rule": PROBE_RULE}, "notify": [department]})
    config = data / "config.yaml"
    config.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    district = load_district(config)
    series: list[SeriesPlan] = []
    crossing = 0
    for n, site in enumerate(s for s in original.sites.values()):
        for d in range(1, DEVICES_PER_SITE + 1):
            cross = (n * DEVICES_PER_SITE + d) % CROSSING_EVERY == 0
            profile, crossed = site_profile(original, site, cross)
            crossing += crossed
            series.append((site.family, site.id, f"d{d}", profile))
    probe = Probe(first.family, CONFIG_PROBE_SITE, metric, spec.high, department)
    return BenchDistrict(config, district.name, series, probe, len(original.rules), crossing)


def _scale(site: Site, rule_metric: str, metric: str) -> float | None:
    """Units of ``metric`` per unit of the metric a rule reads (1 for the metric itself), or None
    when the rule reads neither it nor a metric derived from it at this site."""
    if source_of(rule_metric) != metric:
        return None
    return derived_scale(site, rule_metric)


def _bounds(district: District, site: Site, metric: str) -> list[tuple[ThresholdRule, float]]:
    """(rule, lowest level's bound on ``metric``'s own scale) of the threshold rules reading it."""
    out = []
    for rule in district.rules.values():
        if not isinstance(rule, ThresholdRule) or rule.family != site.family:
            continue
        scale = _scale(site, rule.metric, metric)
        if scale is None:
            continue
        out.append((rule, rule.ordered_levels[0][1] * scale))
    return out


def _read_metrics(district: District, family: str) -> list[str]:
    """The device metrics some rule of ``family`` reads (directly or through a derived metric)."""
    own = device_metrics(family)
    wanted: list[str] = []
    for rule in district.rules.values():
        if rule.family not in (family, "*") or not hasattr(rule, "metric"):
            continue
        metric = source_of(rule.metric)
        if metric in own and metric not in wanted:
            wanted.append(metric)
    return wanted or list(own)[:3]


def site_profile(district: District, site: Site, cross: bool) -> tuple[Profile, bool]:
    """The values one series of ``site`` sends; past one threshold's lowest level when ``cross``."""
    specs = FAMILIES[site.family]
    profile: list[tuple[str, float, float]] = []
    crossed = False
    for metric in _read_metrics(district, site.family):
        spec = specs[metric]
        bounds = _bounds(district, site, metric)
        if cross and not crossed and bounds:
            rule, bound = bounds[0]
            margin = max(rule.hysteresis, abs(bound) * 0.05, 0.1)
            value = bound + margin if rule.direction == "above" else bound - margin
            value = 1.0 if spec.binary else min(spec.high, max(spec.low, value))
            profile.append((metric, value, 0.0))
            crossed = True
            continue
        if spec.binary:
            profile.append((metric, 0.0, 0.0))
            continue
        floor = 0.0 if spec.low <= 0.0 <= spec.high else spec.low
        below = [b for r, b in bounds if r.direction == "below"]
        above = [b for r, b in bounds if r.direction == "above"]
        lo = max(below) if below else None
        hi = min(above) if above else None
        if lo is not None and hi is not None:
            base, spread = (lo + hi) / 2, (hi - lo) * 0.1
        elif hi is not None:
            base = floor + (hi - floor) / 2 if hi > floor else hi
            spread = (hi - base) * 0.2
        elif lo is not None:
            base = min(spec.high, lo + abs(lo) * 0.04)
            spread = (base - lo) * 0.4
        else:
            base = floor + (min(spec.high, floor + 100.0) - floor) / 2
            spread = base * 0.1
        spread = min(spread, _trend_noise(district, site, metric, base))
        profile.append((metric, round(base, 3), round(max(spread, 0.0), 3)))
    return tuple(profile), crossed


def _trend_noise(district: District, site: Site, metric: str, base: float) -> float:
    """The widest noise (``spread``) on ``metric`` at ``base`` that no trend rule reading it
    can take for a trend: its fitted slope stays under ``TREND_NOISE_SHARE`` of the rule's
    slope limits and of the slope its forecast needs to reach its bound within ``within``."""
    widest = float("inf")
    for rule in district.rules.values():
        if not isinstance(rule, TrendRule) or rule.family != site.family:
            continue
        scale = _scale(site, rule.metric, metric)
        if scale is None:
            continue
        slopes = [abs(s) * scale for s in (rule.slope_above, rule.slope_below) if s is not None]
        target = district.rules.get(rule.forecast.rule) if rule.forecast else None
        if rule.forecast is not None and isinstance(target, ThresholdRule):
            bound = target.levels[rule.forecast.level.label] * scale
            gap = bound - base if target.direction == "above" else base - bound
            slopes.append(max(gap, 0.0) / (rule.forecast.within / 60))
        spacing_min = rule.window / max(MIN_CAPACITY, rule.min_points) / 60  # the trend ring's spacing
        for slope in slopes:
            widest = min(widest, slope * spacing_min * TREND_NOISE_SHARE - ROUNDING)
    return max(widest, 0.0)
