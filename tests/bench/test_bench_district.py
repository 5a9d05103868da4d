"""The bench's load plan for an operator's config (``service.bench.district``): no trend churn.

Fast (no stack): the plan's readings go straight through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alerting.engine import Engine
from alerting.route import Router
from domain import Severity
from domain.config import ThresholdRule
from domain.district import load_district
from service.bench.district import PROBE_RULE, from_config, synthetic
from tests.rules.bench_engine import bench_load

ROOT = Path(__file__).resolve().parents[2]


def test_xicheng_load_is_noisy_but_raises_no_trend(tmp_path: Path) -> None:
    plan = from_config(ROOT / "configs" / "xicheng.yaml", tmp_path)
    noisy = {m for *_, profile in plan.series for m, _base, spread in profile if spread > 0}
    assert {"vapor_lel", "tank_level_pct", "occupancy", "co_ppm", "o2_pct", "water_level_cm"} <= noisy
    # 10 messages a second per series for about 100 s: every trend window gets its first points,
    # where noise weighs most.
    district, work = bench_load(plan, 100_000, rate=10.0 * len(plan.series))
    engine = Engine(district)
    signals = [s for batch in work for s in engine.process(batch)]
    assert [s for s in signals if s.kind == "trend"] == []
    # The crossing series still fire their thresholds, as the plan intends.
    assert {s.key.rule for s in signals if s.firing} >= {"vapor-level"}


@dataclass(frozen=True)
class _ProbeAlert:
    rule: str
    kind: str
    family: str
    metric: str
    site: str
    street: str
    severity: Severity


def test_the_probe_alert_is_routed_to_the_probe_alone_in_every_district(tmp_path: Path) -> None:
    """The latency probe's alerts cost the same whatever the config's routing (one department, no
    hazard listing), so the synthetic and an operator's district compare on their rules alone."""
    for plan in (from_config(ROOT / "configs" / "xicheng.yaml", tmp_path / "x"), synthetic(tmp_path / "s")):
        district = load_district(plan.config)
        rule = district.rules[PROBE_RULE]
        assert isinstance(rule, ThresholdRule)
        [(severity, _bound)] = rule.ordered_levels
        site = district.sites[plan.probe.site]
        alert = _ProbeAlert(PROBE_RULE, "threshold", site.family, plan.probe.metric, site.id, site.street, severity)
        assert Router(district).departments_for(alert) == (plan.probe.department,)
        assert severity < district.config.supervision.list_.severity_at_least
