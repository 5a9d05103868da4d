"""Micro-benchmark of ``Engine.process`` (not a test): ``python -m tests.rules.bench_engine``.

A district of 600 sites × 2 devices, each device sending 3 values a second as random
walks that now and then cross levels; batches of 500 readings, as ingest hands them over.
Prints readings/s through ``process`` for three rule sets: none (the fixed cost), the
contract's kind of rules, and a threshold plus a trend on every value.
"""

from __future__ import annotations

import random
import time
from typing import Any

from alerting.engine import Engine
from domain import Batch, Reading, parse_district

SITES = {"gas_station": 300, "underground": 200, "crowd_venue": 100}
METRICS = {"gas_station": ("vapor_lel", "tank_pressure_kpa", "tank_temp_c"),
           "underground": ("co_ppm", "o2_pct", "occupancy"),
           "crowd_venue": ("occupancy", "inflow_per_min", "outflow_per_min")}
START = {"vapor_lel": 3.0, "tank_pressure_kpa": 2.0, "tank_temp_c": 20.0, "co_ppm": 5.0, "o2_pct": 20.9,
         "occupancy": 500.0, "inflow_per_min": 30.0, "outflow_per_min": 30.0}

CONTRACT_RULES: list[dict[str, Any]] = [
    {"id": "vapor-level", "family": "gas_station", "metric": "vapor_lel", "kind": "threshold",
     "levels": {"blue": 10, "yellow": 20, "orange": 25, "red": 50}, "hysteresis": 2, "for": "10s"},
    {"id": "vapor-rising", "family": "gas_station", "metric": "vapor_lel", "kind": "trend", "window": "5m",
     "min_points": 5, "slope_above": 1.0, "forecast": {"rule": "vapor-level", "level": "red", "within": "10m"},
     "severity": "orange"},
    {"id": "co", "family": "underground", "metric": "co_ppm", "kind": "threshold",
     "levels": {"yellow": 25, "red": 50}},
    {"id": "o2", "family": "underground", "metric": "o2_pct", "kind": "threshold", "direction": "below",
     "levels": {"yellow": 19.5, "red": 18}},
    {"id": "residency", "family": "underground", "metric": "occupancy", "kind": "threshold",
     "levels": {"yellow": 0}, "schedule": {"between": "23:00-06:00"}},
    {"id": "full", "family": "crowd_venue", "metric": "occupancy_ratio", "kind": "threshold",
     "levels": {"yellow": 0.8, "red": 0.95}},
    {"id": "silent", "kind": "deadman", "after": "2m"},
]


def every_value_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for family, metrics in METRICS.items():
        for m in metrics:
            s = START[m]
            rules.append({"id": f"{m}-{family}-lvl", "family": family, "metric": m, "kind": "threshold",
                          "levels": {"yellow": s * 1.5, "red": s * 2}, "hysteresis": s * 0.05})
            rules.append({"id": f"{m}-{family}-trend", "family": family, "metric": m, "kind": "trend",
                          "window": "5m", "min_points": 5, "slope_above": s * 0.2,
                          "forecast": {"rule": f"{m}-{family}-lvl", "level": "red", "within": "10m"}})
    return rules


def district(rules: list[dict[str, Any]]) -> Any:
    sites = [{"id": f"{f[:2].upper()}-{i}", "name": "x", "family": f, "street": "st", "sector": "dep",
              **({"capacity": 1000, "area_m2": 800} if f == "crowd_venue" else {})}
             for f, n in SITES.items() for i in range(n)]
    return parse_district({"district": "bench", "timezone": "Asia/Shanghai",
                           "departments": [{"id": "dep", "name": "d", "kind": "sector"}],
                           "streets": [{"id": "st", "name": "s", "office": "dep"}],
                           "sites": sites, "rules": rules}, "<bench>")


def batches(seconds: int, size: int = 500) -> list[Batch]:
    rng = random.Random(1)
    devices = [(f, f"{f[:2].upper()}-{i}", f"dev{d}") for f, n in SITES.items() for i in range(n) for d in (1, 2)]
    state = {dev: {m: START[m] for m in METRICS[dev[0]]} for dev in devices}
    readings = []
    t0 = 1_767_225_600_000
    for second in range(seconds):
        for dev in devices:
            family, site, device = dev
            values = state[dev]
            for m in values:
                values[m] = max(0.0, values[m] + rng.gauss(0, START[m] * 0.03))
            readings.append(Reading(family, site, device, "st", t0 + second * 1000 + rng.randrange(1000),
                                    dict(values)))
    return [Batch(tuple(readings[i:i + size])) for i in range(0, len(readings), size)]


def run(name: str, rules: list[dict[str, Any]], work: list[Batch], repeat: int = 3) -> None:
    """Best of ``repeat`` runs, each on a fresh engine: the machine is shared, the minimum is the cost."""
    n = sum(len(b.readings) for b in work)
    elapsed, signals = float("inf"), 0
    for _ in range(repeat):
        engine = Engine(district(rules))
        start = time.perf_counter()
        signals = sum(len(engine.process(batch)) for batch in work)
        elapsed = min(elapsed, time.perf_counter() - start)
    print(f"{name:<28} {n / elapsed:>10,.0f} readings/s  {elapsed / n * 1e6:6.2f} µs/reading  "
          f"({n:,} readings × 3 values, {signals:,} signals)")


def main() -> None:
    work = batches(seconds=200)
    for name, rules in (("no rules (deadman only)", CONTRACT_RULES[-1:]),
                        ("contract-style rules", CONTRACT_RULES),
                        ("threshold+trend every value", every_value_rules())):
        run(name, rules, work)


if __name__ == "__main__":
    main()
