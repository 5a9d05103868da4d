"""Soak (issue 10 point 5): ``safewatch bench`` for 10 minutes at half the capacity measured just
before on the same machine; serve's memory must level off: RSS at the end within 10% of RSS
after the first minute (from the bench's ``rss_samples``, one per second).

Marked ``bench`` (a quarter of an hour of CPU): ``pytest -m bench tests/bench/test_soak.py -s``.
``SAFEWATCH_SOAK_S`` shortens the soak for a trial run (the verdict needs more than 60 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOAK_S = float(os.environ.get("SAFEWATCH_SOAK_S", "600"))
WARM_S = 60.0
GROWTH = 1.10


def bench(data: Path, *args: str, timeout: float) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-m", "service.cli", "bench", "--data", str(data), *args], cwd=ROOT,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    summary: dict[str, Any] = json.loads(p.stdout.decode().strip().splitlines()[-1])
    return summary


def total_rss(sample: list[float]) -> float:
    return sum(sample[1:])  # [seconds, MB of each serve process...]


@pytest.mark.bench
@pytest.mark.timeout(int(SOAK_S) + 900)
def test_soak_at_half_capacity_keeps_memory_flat(tmp_path: Path) -> None:
    assert SOAK_S > WARM_S + 30, f"SAFEWATCH_SOAK_S={SOAK_S:g}: the soak must run well past the first minute"
    capacity = bench(tmp_path / "capacity", "--duration", "20", "--rate", "max", timeout=600)["readings_per_s"]
    rate = max(100, round(capacity * 0.5))
    soak = bench(tmp_path / "soak", "--duration", f"{SOAK_S:g}", "--rate", str(rate), timeout=SOAK_S + 600)
    samples: list[list[float]] = soak["rss_samples"]
    alive = [s for s in samples if all(mb > 0 for mb in s[1:])]  # the last one may follow serve's exit
    warm = next(s for s in alive if s[0] >= WARM_S)
    end = alive[-1]
    figures = {"capacity_per_s": capacity, "soak_rate_per_s": rate, "soak_s": SOAK_S,
               "readings_per_s": soak["readings_per_s"], "lost": soak["lost"],
               "rss_after_1min_mb": total_rss(warm), "rss_end_mb": total_rss(end),
               "rss_peak_mb": soak["rss_mb"], "growth_pct": round((total_rss(end) / total_rss(warm) - 1) * 100, 1),
               "alert_latency_ms": soak["alert_latency_ms"]}
    print(json.dumps(figures))
    assert soak["lost"] == 0, figures
    assert total_rss(end) <= total_rss(warm) * GROWTH, figures
