"""The bench's load plan for an operator's config (``service.bench.district``): no trend churn.

Fast (no stack): the plan's readings go straight through the engine.
"""

from __future__ import annotations

from pathlib import Path

from alerting.engine import Engine
from service.bench.district import from_config
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
