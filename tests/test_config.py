"""Config validation, table-driven: a valid base district and one mutation per refusal."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain import ConfigError, Severity, load_district, parse_district
from domain.config import DeadmanRule, ThresholdRule, TrendRule
from domain.durations import format_duration, parse_duration

BASE = yaml.safe_load(
    """
district: testville
timezone: Asia/Shanghai
departments:
  - {id: safety, name: Safety bureau, kind: comprehensive}
  - {id: trade, name: Trade office, kind: sector}
  - {id: fire, name: Fire brigade, kind: sector}
  - {id: office_north, name: North street office, kind: territorial}
streets:
  - {id: north, name: North street, office: office_north}
sites:
  - {id: GS-1, name: Station, family: gas_station, street: north, sector: trade}
  - {id: CV-1, name: Mall, family: crowd_venue, street: north, sector: trade, capacity: 100, area_m2: 50}
  - {id: UG-1, name: Shelter, family: underground, street: north, sector: safety}
rules:
  - {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold,
     levels: {blue: 10, yellow: 20, orange: 25, red: 50}, hysteresis: 2, for: 10s}
  - {id: vapor-trend, family: gas_station, metric: vapor_lel, kind: trend, window: 5m,
     slope_above: 1.0, forecast: {rule: vapor, level: red, within: 10m}, severity: orange}
  - {id: o2-low, family: underground, metric: o2_pct, kind: threshold, direction: below,
     levels: {yellow: 19.5, orange: 18, red: 16}}
  - {id: night, family: underground, metric: occupancy, kind: threshold, levels: {yellow: 0},
     schedule: {between: "23:00-06:00"}}
  - {id: crowd, family: crowd_venue, metric: occupancy_ratio, kind: threshold, levels: {red: 1.0}}
  - {id: silent, kind: deadman, family: "*", after: 2m}
routing:
  - {match: {}, notify: [sector, street]}
  - {match: {severity_at_least: orange}, notify: [safety]}
  - {match: {family: gas_station, metric: vapor_lel}, notify: [fire]}
escalation:
  - {severity_at_least: yellow, unacknowledged_for: 15m, notify: [safety]}
"""
)

Mutation = Callable[[dict[str, Any]], object]


def _set(path: str, value: Any) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _delete(path: str) -> Mutation:
    def apply(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return apply


def _append(section: str, item: Any) -> Mutation:
    return lambda doc: doc[section].append(item)


# (name, mutation, expected path, expected words in the reason)
INVALID: list[tuple[str, Mutation, str, str]] = [
    ("unknown top-level key", _set("colour", "red"), "colour", "unknown key"),
    ("unknown site key", _set("sites.0.owner", "x"), "sites[0].owner", "unknown key"),
    ("unknown street of a site", _set("sites.0.street", "south"), "sites[0].street",
     "unknown street 'south'"),
    ("unknown sector department", _set("sites.0.sector", "nobody"), "sites[0].sector", "unknown department 'nobody'"),
    ("unknown street office", _set("streets.0.office", "ghost"), "streets[0].office", "unknown department 'ghost'"),
    ("venue without capacity", _delete("sites.1.capacity"), "sites[1].capacity", "crowd_venue needs capacity"),
    ("venue without area", _delete("sites.1.area_m2"), "sites[1].area_m2", "crowd_venue needs area_m2"),
    ("unknown family", _set("sites.2.family", "mine"), "sites[2].family", "'gas_station'"),
    ("metric the family lacks", _set("rules.0.metric", "co_ppm"), "rules[0].metric",
     "family 'gas_station' has no metric 'co_ppm'"),
    ("levels out of order (above)", _set("rules.0.levels", {"yellow": 30, "red": 20}), "rules[0].levels",
     "levels must increase"),
    ("levels out of order (below)", _set("rules.2.levels", {"yellow": 10, "red": 16}), "rules[2].levels",
     "levels must decrease"),
    ("unknown severity name", _set("rules.0.levels", {"purple": 3}), "rules[0].levels", "unknown severity 'purple'"),
    ("malformed duration", _set("rules.0.for", "10 sec"), "rules[0].for", "malformed duration '10 sec'"),
    ("malformed schedule", _set("rules.3.schedule", {"between": "23:00-6"}), "rules[3].schedule.between",
     "malformed schedule"),
    ("forecast to unknown rule", _set("rules.1.forecast.rule", "nope"), "rules[1].forecast.rule",
     "unknown rule 'nope'"),
    ("unknown rule kind", _set("rules.5.kind", "magic"), "rules[5]", "unknown rule kind 'magic'"),
    ("duplicate site id", _append("sites", {"id": "GS-1", "name": "again", "family": "gas_station",
                                            "street": "north", "sector": "trade"}),
     "sites[3].id", "duplicate id 'GS-1'"),
    ("bad site id", _set("sites.0.id", "GS 1"), "sites[0].id", "pattern"),
    ("routing to unknown department", _set("routing.1.notify", ["safety", "army"]), "routing[1].notify[1]",
     "unknown department 'army'"),
    ("routing on unknown metric", _set("routing.2.match.metric", "co_ppm"), "routing[2].match.metric", "co_ppm"),
    ("escalation to unknown department", _set("escalation.0.notify", ["nobody"]), "escalation[0].notify[0]",
     "unknown department"),
    ("unknown timezone", _set("timezone", "Mars/Olympus"), "timezone", "unknown timezone 'Mars/Olympus'"),
    ("negative capacity", _set("sites.1.capacity", -5), "sites[1].capacity", "greater than 0"),
    ("deadman on unknown family", _set("rules.5.family", "mine"), "rules[5].family", "unknown family 'mine'"),
    ("trend without condition", lambda d: [_delete("rules.1.forecast")(d), _delete("rules.1.slope_above")(d)],
     "rules[1].slope_above", "a trend rule needs slope_above, slope_below or forecast"),
    ("forecast level the rule lacks", lambda d: [_set("rules.0.levels", {"yellow": 20, "orange": 25})(d)],
     "rules[1].forecast.level", "rule 'vapor' has no level 'red'"),
    ("top level not a mapping", lambda d: d.clear(), "departments", "required key is missing"),
]


@pytest.mark.parametrize(("name", "mutate", "path", "reason"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_config_is_refused_with_path_and_reason(name: str, mutate: Mutation, path: str, reason: str) -> None:
    doc = copy.deepcopy(BASE)
    mutate(doc)
    with pytest.raises(ConfigError) as info:
        parse_district(doc, "district.yaml")
    paths = [p for p, _ in info.value.problems]
    assert path in paths, f"{name}: {info.value.problems}"
    message = dict(info.value.problems)[path]
    assert reason in message, f"{name}: {message}"
    assert str(info.value).startswith(f"district.yaml: {info.value.problems[0][0]}: ")


def test_valid_config_loads_with_typed_rules() -> None:
    d = parse_district(copy.deepcopy(BASE), "district.yaml")
    assert d.name == "testville"
    vapor = d.rules["vapor"]
    assert isinstance(vapor, ThresholdRule)
    assert vapor.ordered_levels[-1] == (Severity.RED, 50.0)
    assert vapor.for_ == 10.0
    trend = d.rules["vapor-trend"]
    assert isinstance(trend, TrendRule) and trend.window == 300.0 and trend.severity is Severity.ORANGE
    assert isinstance(d.rules["silent"], DeadmanRule)
    assert [r.id for r in d.rules_for("gas_station", "vapor_lel")] == ["vapor", "vapor-trend"]
    assert d.street_office(d.sites["GS-1"]) == "office_north"


@pytest.mark.parametrize(
    ("window", "minute", "active"),
    [("23:00-06:00", 23 * 60, True), ("23:00-06:00", 0, True), ("23:00-06:00", 5 * 60 + 59, True),
     ("23:00-06:00", 6 * 60, False), ("23:00-06:00", 12 * 60, False), ("08:00-18:00", 8 * 60, True),
     ("08:00-18:00", 18 * 60, False), ("08:00-18:00", 7 * 60 + 59, False)],
)
def test_schedule_windows_span_midnight(window: str, minute: int, active: bool) -> None:
    doc = copy.deepcopy(BASE)
    doc["rules"][3]["schedule"]["between"] = window
    rule = parse_district(doc).rules["night"]
    assert isinstance(rule, ThresholdRule) and rule.schedule is not None
    assert rule.schedule.active_at(minute) is active


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("10s", 10), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("0s", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "5 m", "m5", "1w", "-5s", "1.5.2s"])
def test_malformed_durations(text: str) -> None:
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for text in ("500ms", "10s", "5m", "2h", "1d"):
        assert format_duration(parse_duration(text)) == text


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("district: x\ndepartments: [\n  {id: a\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+, column \d+: YAML syntax error"):
        load_district(bad)


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text(yaml.safe_dump(BASE, allow_unicode=True) + "district: again\n")
    with pytest.raises(ConfigError, match="duplicate key 'district'"):
        load_district(bad)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_district(tmp_path / "nope.yaml")


def test_contract_example_loads() -> None:
    d = load_district(Path(__file__).parent / "contract_example.yaml")
    assert set(d.sites) == {"GS-001", "CV-001"}


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command", ["check", "serve"])
def test_cli_refuses_bad_config_with_exit_2(tmp_path: Path, command: str) -> None:
    doc = copy.deepcopy(BASE)
    del doc["sites"][1]["capacity"]
    path = tmp_path / "district.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    # serve must refuse before connecting: the URLs point nowhere reachable
    env_args = ["--mqtt-url", "mqtt://127.0.0.1:1", "--influx-url", "http://127.0.0.1:1"] if command == "serve" else []
    result = _run_cli(command, "--config", str(path), *env_args)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == f"safewatch: {path}: sites[1].capacity: a crowd_venue needs capacity"
    assert "Traceback" not in result.stderr


def test_cli_check_accepts_good_config(tmp_path: Path) -> None:
    path = tmp_path / "district.yaml"
    path.write_text(yaml.safe_dump(BASE, allow_unicode=True))
    result = _run_cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
