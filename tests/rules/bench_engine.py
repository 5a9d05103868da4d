"""Micro-benchmark of ``Engine.process`` (not a test): ``python -m tests.rules.bench_engine [--config FILE]``.

A district of 600 sites × 2 devices, each device sending 3 values a second as random
walks that now and then cross levels; batches of 500 readings, as ingest hands them over.
Prints readings/s through ``process`` for three rule sets: none (the fixed cost), the
contract's kind of rules, and a threshold plus a trend on every value.

With ``--config``, also the load ``safewatch bench`` offers (``service.bench``): its synthetic
district, and that config's district with all its rules, each series sending 16,000 messages/s
round-robin of the values its plan gives. That is the engine's share of the bench's two figures.

Times are the process's CPU time, best of three runs: the machine is usually shared.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from alerting.engine import Engine
from domain import Batch, District, Reading, parse_district
from domain.district import load_district
from service.bench import district as bench_district
from service.bench.load import VALUES_PER_MESSAGE

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


def bench_load(plan: bench_district.BenchDistrict, messages: int, rate: float = 16_000.0,
               size: int = 500) -> tuple[District, list[Batch]]:
    """``messages`` readings as ``service.bench.load`` publishes them for ``plan`` at ``rate``."""
    d = load_district(plan.config)
    rng = random.Random(0)
    rest = VALUES_PER_MESSAGE - 1
    chunks = [[p[:1] + p[i:i + rest] for i in range(1, len(p), rest)] or [p] for *_, p in plan.series]
    sent, last = [0] * len(plan.series), [0] * len(plan.series)
    t0 = 1_767_225_600_000
    readings = []
    for i in range(messages):
        k = i % len(plan.series)
        family, site, device, _ = plan.series[k]
        ts = last[k] = max(t0 + int(i * 1000 / rate), last[k] + 1)
        part = chunks[k][sent[k] % len(chunks[k])]
        sent[k] += 1
        values = {m: round(base + spread * (rng.random() - 0.5), 3) if spread else base for m, base, spread in part}
        readings.append(Reading(family, site, device, d.sites[site].street, ts, values))
    return d, [Batch(tuple(readings[i:i + size])) for i in range(0, len(readings), size)]


def timed(name: str, make: Any, work: list[Batch], repeat: int = 3) -> None:
    """Best of ``repeat`` runs, each on a fresh engine: the machine is shared, the minimum is the cost."""
    n = sum(len(b.readings) for b in work)
    values = sum(len(r.values) for b in work for r in b.readings) / n
    elapsed, signals = float("inf"), 0
    for _ in range(repeat):
        engine = Engine(make())
        start = time.process_time()
        signals = sum(len(engine.process(batch)) for batch in work)
        elapsed = min(elapsed, time.process_time() - start)
    print(f"{name:<34} {n / elapsed:>10,.0f} readings/s  {elapsed / n * 1e6:6.2f} µs/reading  "
          f"({n:,} readings × {values:.2g} values, {signals:,} signals)")


def run(name: str, rules: list[dict[str, Any]], work: list[Batch], repeat: int = 3) -> None:
    timed(name, lambda: district(rules), work, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="also the bench's load for this config (and the synthetic one)")
    parser.add_argument("--only-bench", action="store_true", help="skip the random-walk rule sets")
    parser.add_argument("--messages", type=int, default=600_000, help="bench-load readings per district")
    args = parser.parse_args()
    if not args.only_bench:
        work = batches(seconds=200)
        for name, rules in (("no rules (deadman only)", CONTRACT_RULES[-1:]),
                            ("contract-style rules", CONTRACT_RULES),
                            ("threshold+trend every value", every_value_rules())):
            run(name, rules, work)
    if args.config is not None:
        with tempfile.TemporaryDirectory() as tmp:
            for name, plan in (("bench load: synthetic district", bench_district.synthetic(Path(tmp) / "s")),
                               (f"bench load: {args.config.name}",
                                bench_district.from_config(args.config, Path(tmp) / "c"))):
                d, work = bench_load(plan, args.messages)
                timed(name, lambda d=d: d, work)


if __name__ == "__main__":
    main()
