"""A short ``safewatch bench``: the whole measurement runs and reports what contract section 8 names.

Marked ``bench`` (minutes of CPU on a shared machine): run with ``pytest -m bench tests/bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
@pytest.mark.timeout(600)
def test_bench_prints_its_summary_last_and_loses_nothing(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "service.cli", "bench", "--duration", "6", "--rate", "3000",
                        "--data", str(tmp_path)], cwd=ROOT, capture_output=True, timeout=580)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    summary = json.loads(p.stdout.decode().strip().splitlines()[-1])
    for key in ("readings_per_s", "lost", "broker_ceiling_per_s", "influx_ceiling_per_s", "rss_mb",
                "publisher_rate_per_s"):
        assert isinstance(summary[key], int | float), key
    assert summary["lost"] == 0
    assert summary["readings_per_s"] > 1000
    assert 0 < summary["rss_mb"] < 300
    latency = summary["alert_latency_ms"]
    assert set(latency) >= {"p50", "p99"} and latency["samples"] > 0
    assert 0 < latency["p50"] <= latency["p99"] < 10_000
