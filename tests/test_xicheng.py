"""The demo district: loads, and covers what the foundation issue promises."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain import District, load_district
from domain.config import DeadmanRule, ThresholdRule, TrendRule
from domain.families import FAMILIES

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "xicheng.yaml"


@pytest.fixture(scope="module")
def xicheng() -> District:
    return load_district(CONFIG)


def test_every_site_resolves_sector_and_street_office(xicheng: District) -> None:
    for site in xicheng.sites.values():
        assert xicheng.departments[site.sector].kind == "sector", site.id
        office = xicheng.street_office(site)
        assert xicheng.departments[office].kind == "territorial", site.id


def test_every_metric_of_every_family_has_a_threshold_rule(xicheng: District) -> None:
    for family, metrics in FAMILIES.items():
        for metric in metrics:
            rules = xicheng.rules_for(family, metric)
            assert any(isinstance(r, ThresholdRule) for r in rules), f"{family}.{metric}"


def test_the_demo_district_has_what_the_policy_asks(xicheng: District) -> None:
    families = [s.family for s in xicheng.sites.values()]
    assert families.count("gas_station") >= 12
    assert families.count("crowd_venue") >= 15
    assert families.count("underground") >= 15
    assert len(xicheng.streets) == 15
    trend_metrics = {r.metric for r in xicheng.rules.values() if isinstance(r, TrendRule)}
    assert {"vapor_lel", "co_ppm", "water_level_cm"} <= trend_metrics
    assert any("occupancy" in m for m in trend_metrics)
    assert any(isinstance(r, DeadmanRule) for r in xicheng.rules.values())
    assert any(isinstance(r, ThresholdRule) and r.schedule for r in xicheng.rules.values())
    assert {e.severity_at_least.label for e in xicheng.escalation} >= {"orange", "red"}
    notified = {d for route in xicheng.routing for d in route.notify}
    assert {"sector", "street", "fire", "police"} <= notified
