"""Routing, table-driven like Alertmanager's route_test.go: an inline config and a table of alerts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from alerting.route import Router
from domain import Severity, parse_district

CONFIG = """
district: routetest
departments:
  - {id: bureau, name: Bureau, kind: comprehensive}
  - {id: commerce, name: Commerce, kind: sector}
  - {id: culture, name: Culture, kind: sector}
  - {id: civil, name: Civil defence, kind: sector}
  - {id: fire, name: Fire brigade, kind: sector}
  - {id: police, name: Police, kind: sector}
  - {id: office_n, name: North office, kind: territorial}
  - {id: office_s, name: South office, kind: territorial}
streets:
  - {id: north, name: North street, office: office_n}
  - {id: south, name: South street, office: office_s}
sites:
  - {id: GS-1, name: Station, family: gas_station, street: north, sector: commerce}
  - {id: CV-1, name: Theatre, family: crowd_venue, street: south, sector: culture, capacity: 100, area_m2: 50}
  - {id: UG-1, name: Shelter, family: underground, street: south, sector: civil}
rules:
  - {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20, red: 50}}
  - {id: crowd, family: crowd_venue, metric: occupancy_ratio, kind: threshold,
     levels: {orange: 0.9, red: 1.0}}
  - {id: gas, family: underground, metric: ch4_lel, kind: threshold, levels: {blue: 5, red: 25}}
  - {id: silent, kind: deadman, after: 2m}
routing:
  - {match: {}, notify: [sector, street]}
  - {match: {severity_at_least: orange}, notify: [bureau]}
  - {match: {family: gas_station, metric: vapor_lel, severity_at_least: orange}, notify: [fire]}
  - {match: {kind: deadman}, notify: [street]}
  - {match: {family: crowd_venue, severity_at_least: red}, notify: [police, bureau]}
  - {match: {street: south, rule: gas}, notify: [fire]}
  - {match: {site: UG-1, severity_at_least: red}, notify: [police]}
"""


@dataclass(frozen=True)
class A:
    """The routable part of an alert."""

    rule: str
    kind: str
    family: str
    metric: str
    site: str
    severity: Severity
    street: str = ""


Y, OR, R, B = Severity.YELLOW, Severity.ORANGE, Severity.RED, Severity.BLUE

CASES = [
    ("catch-all: sector and street", A("vapor", "threshold", "gas_station", "vapor_lel", "GS-1", Y),
     ("commerce", "office_n")),
    ("orange adds the bureau and, for vapour, the fire brigade", A("vapor", "threshold", "gas_station",
     "vapor_lel", "GS-1", OR), ("commerce", "office_n", "bureau", "fire")),
    ("red: same as orange, no duplicates", A("vapor", "threshold", "gas_station", "vapor_lel", "GS-1", R),
     ("commerce", "office_n", "bureau", "fire")),
    ("crowd orange: sector culture, south office, bureau", A("crowd", "threshold", "crowd_venue",
     "occupancy_ratio", "CV-1", OR), ("culture", "office_s", "bureau")),
    ("crowd red adds police; bureau stays in first-seen place", A("crowd", "threshold", "crowd_venue",
     "occupancy_ratio", "CV-1", R), ("culture", "office_s", "bureau", "police")),
    ("deadman: street already there via catch-all", A("silent", "deadman", "underground", "", "UG-1", Y),
     ("civil", "office_s")),
    ("rule and street match", A("gas", "threshold", "underground", "ch4_lel", "UG-1", B),
     ("civil", "office_s", "fire")),
    ("site and severity match", A("gas", "threshold", "underground", "ch4_lel", "UG-1", R),
     ("civil", "office_s", "bureau", "fire", "police")),
    ("a site no longer configured: placeholders skip, street match uses the recorded street",
     A("gas", "threshold", "underground", "ch4_lel", "UG-9", B, street="south"), ("fire",)),
]


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(parse_district(yaml.safe_load(CONFIG), "route-test"))


@pytest.mark.parametrize(("name", "alert", "expected"), CASES, ids=[c[0] for c in CASES])
def test_departments_for(router: Router, name: str, alert: A, expected: tuple[str, ...]) -> None:
    assert router.departments_for(alert) == expected


@pytest.mark.parametrize(("names", "site", "expected"), [
    (["bureau"], "GS-1", ("bureau",)),
    (["street", "sector", "street"], "GS-1", ("office_n", "commerce")),
    (["sector", "bureau"], "missing", ("bureau",)),
    ([], "GS-1", ()),
])
def test_resolve_placeholders(router: Router, names: list[str], site: str, expected: tuple[str, ...]) -> None:
    assert router.resolve(names, site) == expected


def test_no_routing_means_no_departments() -> None:
    data = yaml.safe_load(CONFIG)
    data["routing"] = []
    r = Router(parse_district(data, "route-test"))
    assert r.departments_for(A("vapor", "threshold", "gas_station", "vapor_lel", "GS-1", R)) == ()


def test_contract_example_routing() -> None:
    with open("tests/contract_example.yaml", encoding="utf-8") as f:
        r = Router(parse_district(yaml.safe_load(f), "contract"))
    assert r.departments_for(A("vapor-level", "threshold", "gas_station", "vapor_lel", "GS-001", Y)) == (
        "commerce", "street_jinrongjie")
    assert r.departments_for(A("vapor-level", "threshold", "gas_station", "vapor_lel", "GS-001", R)) == (
        "commerce", "street_jinrongjie", "safety_bureau", "fire")
