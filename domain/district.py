"""Loading a district: YAML → validated ``DistrictConfig`` → the indexed ``District`` everyone uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import ValidationError

from domain.config import (
    NOTIFY_PLACEHOLDERS,
    ConfigError,
    DeadmanRule,
    Department,
    DistrictConfig,
    Escalation,
    Route,
    Site,
    Street,
    ThresholdRule,
    TrendRule,
)
from domain.families import FAMILIES, FAMILY_NAMES

AnyRule = ThresholdRule | TrendRule | DeadmanRule


@dataclass(frozen=True, eq=False)
class District:
    """A validated district with its lookup tables, built once at start."""

    config: DistrictConfig
    source: str = "<config>"
    departments: Mapping[str, Department] = field(init=False)
    streets: Mapping[str, Street] = field(init=False)
    sites: Mapping[str, Site] = field(init=False)
    rules: Mapping[str, AnyRule] = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        object.__setattr__(self, "departments", {d.id: d for d in c.departments})
        object.__setattr__(self, "streets", {s.id: s for s in c.streets})
        object.__setattr__(self, "sites", {s.id: s for s in c.sites})
        object.__setattr__(self, "rules", {r.id: r for r in c.rules})

    @property
    def name(self) -> str:
        return self.config.district

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.timezone)

    @property
    def routing(self) -> list[Route]:
        return self.config.routing

    @property
    def escalation(self) -> list[Escalation]:
        return self.config.escalation

    def rules_for(self, family: str, metric: str | None = None) -> list[AnyRule]:
        """Rules that apply to ``family`` (and ``metric``, for threshold and trend rules)."""
        out: list[AnyRule] = []
        for r in self.config.rules:
            if isinstance(r, DeadmanRule):
                if metric is None and r.family in ("*", family):
                    out.append(r)
            elif r.family == family and (metric is None or r.metric == metric):
                out.append(r)
        return out

    def street_office(self, site: Site) -> str:
        return self.streets[site.street].office


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a config with both is almost always a typo."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _loc(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("threshold", "trend", "deadman") and out.endswith("]"):
            continue  # pydantic names the union branch; the file has no such level
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(err: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown rule kind {e.get('input', {}).get('kind')!r} (expected threshold, trend or deadman)"
        elif e["type"] == "union_tag_not_found":
            msg = "rule needs a kind (threshold, trend or deadman)"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        loc = _loc(e["loc"])
        if msg.startswith("@"):  # a model-level check naming the key it is about: "@levels: ..."
            key, _, msg = msg[1:].partition(": ")
            loc = f"{loc}.{key}" if loc else key
        problems.append((loc, msg))
    return problems


def parse_district(data: Any, source: str = "<config>") -> District:
    """Validate an already-parsed YAML document; raises ConfigError with every problem found."""
    if not isinstance(data, dict):
        raise ConfigError(source, [("", "the file must hold a mapping with district, departments, sites, ...")])
    try:
        config = DistrictConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, _pydantic_problems(err)) from None
    problems = _check_references(config)
    if problems:
        raise ConfigError(source, problems)
    return District(config, source)


def load_district(path: str | Path) -> District:
    """Read and validate a district config file; raises ConfigError naming the file and the path."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(source, [("", f"cannot read the file: {err.strerror}")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(source, [(where, f"YAML syntax error: {problem}")]) from None
    return parse_district(data, source)


def _duplicates(items: Iterable[Any], section: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        if item.id in seen:
            out.append((f"{section}[{i}].id", f"duplicate id {item.id!r} (first at {section}[{seen[item.id]}])"))
        seen.setdefault(item.id, i)
    return out


def _check_references(c: DistrictConfig) -> list[tuple[str, str]]:
    p: list[tuple[str, str]] = []
    for section in ("departments", "streets", "sites", "rules"):
        p += _duplicates(getattr(c, section), section)
    departments = {d.id for d in c.departments}
    streets = {s.id for s in c.streets}
    sites = {s.id for s in c.sites}
    rules = {r.id: r for r in c.rules}

    for i, st in enumerate(c.streets):
        if st.office not in departments:
            p.append((f"streets[{i}].office", f"unknown department {st.office!r}"))
    for i, s in enumerate(c.sites):
        if s.street not in streets:
            p.append((f"sites[{i}].street", f"unknown street {s.street!r}"))
        if s.sector not in departments:
            p.append((f"sites[{i}].sector", f"unknown department {s.sector!r}"))
        if s.family == "crowd_venue":
            for key in ("capacity", "area_m2"):
                if getattr(s, key) is None:
                    p.append((f"sites[{i}].{key}", f"a crowd_venue needs {key}"))

    for i, r in enumerate(c.rules):
        if isinstance(r, DeadmanRule):
            if r.family != "*" and r.family not in FAMILIES:
                p.append((f"rules[{i}].family", f"unknown family {r.family!r} (expected *, {', '.join(FAMILY_NAMES)})"))
            continue
        if r.family not in FAMILIES:
            p.append((f"rules[{i}].family", f"unknown family {r.family!r} (expected {', '.join(FAMILY_NAMES)})"))
            continue
        if r.metric not in FAMILIES[r.family]:
            p.append((f"rules[{i}].metric", f"family {r.family!r} has no metric {r.metric!r}"))
        if isinstance(r, TrendRule) and r.forecast is not None:
            target = rules.get(r.forecast.rule)
            where = f"rules[{i}].forecast"
            if target is None:
                p.append((f"{where}.rule", f"unknown rule {r.forecast.rule!r}"))
            elif not isinstance(target, ThresholdRule):
                p.append((f"{where}.rule", f"rule {target.id!r} is not a threshold rule"))
            elif (target.family, target.metric) != (r.family, r.metric):
                p.append((f"{where}.rule", f"rule {target.id!r} watches {target.family}.{target.metric}, "
                          f"not {r.family}.{r.metric}"))
            elif r.forecast.level.label not in target.levels:
                p.append((f"{where}.level", f"rule {target.id!r} has no level {r.forecast.level.label!r}"))

    def check_notify(where: str, notify: list[str]) -> None:
        for j, dep in enumerate(notify):
            if dep not in departments and dep not in NOTIFY_PLACEHOLDERS:
                p.append((f"{where}.notify[{j}]", f"unknown department {dep!r} (or use sector / street)"))

    for i, route in enumerate(c.routing):
        m, where = route.match, f"routing[{i}].match"
        if m.family is not None and m.family not in FAMILIES:
            p.append((f"{where}.family", f"unknown family {m.family!r}"))
        if m.metric is not None and not any(
            m.metric in FAMILIES[f] for f in ([m.family] if m.family in FAMILIES else FAMILIES)
        ):
            owner = "no family has" if m.family is None else f"family {m.family!r} has no"
            p.append((f"{where}.metric", f"{owner} metric {m.metric!r}"))
        if m.rule is not None and m.rule not in rules:
            p.append((f"{where}.rule", f"unknown rule {m.rule!r}"))
        if m.site is not None and m.site not in sites:
            p.append((f"{where}.site", f"unknown site {m.site!r}"))
        if m.street is not None and m.street not in streets:
            p.append((f"{where}.street", f"unknown street {m.street!r}"))
        check_notify(f"routing[{i}]", route.notify)
    for i, esc in enumerate(c.escalation):
        check_notify(f"escalation[{i}]", esc.notify)
    return p
