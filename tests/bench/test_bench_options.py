"""``safewatch bench --config`` and ``--processes``: short runs that must report and lose nothing.

Marked ``bench`` (minutes of CPU on a shared machine): run with ``pytest -m bench tests/bench``.
The district is the test's own (not Xicheng's), with a trend rule, a ``for`` and a derived metric.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
district: benchopts
timezone: UTC
departments: [{id: ops, name: Ops, kind: sector}, {id: office, name: Office, kind: territorial}]
streets: [{id: s1, name: Street, office: office}]
sites:
  - {id: G1, name: Station 1, family: gas_station, street: s1, sector: ops}
  - {id: G2, name: Station 2, family: gas_station, street: s1, sector: ops}
  - {id: V1, name: Venue 1, family: crowd_venue, street: s1, sector: ops, capacity: 2000, area_m2: 1000}
  - {id: U1, name: Tunnel 1, family: underground, street: s1, sector: ops}
  - {id: U2, name: Tunnel 2, family: underground, street: s1, sector: ops}
rules:
  - {id: lel, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20, red: 50}, for: 5s}
  - {id: lel-up, family: gas_station, metric: vapor_lel, kind: trend, window: 2m, min_points: 3, slope_above: 5}
  - {id: fill, family: crowd_venue, metric: occupancy_ratio, kind: threshold, levels: {orange: 0.9}}
  - {id: o2, family: underground, metric: o2_pct, kind: threshold, direction: below, levels: {red: 18}}
routing:
  - {match: {}, notify: [sector]}
"""


def _bench(tmp_path: Path, *args: str) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-m", "service.cli", "bench", "--duration", "6", "--rate", "2000",
                        "--data", str(tmp_path / "run"), *args], cwd=ROOT, capture_output=True, timeout=580)
    assert p.returncode == 0, p.stderr.decode()[-3000:]
    return dict(json.loads(p.stdout.decode().strip().splitlines()[-1]))


@pytest.mark.bench
@pytest.mark.timeout(600)
@pytest.mark.parametrize("processes", [1, 2])
def test_bench_on_a_config_loads_every_site_and_loses_nothing(tmp_path: Path, processes: int) -> None:
    config = tmp_path / "district.yaml"
    config.write_text(CONFIG)
    summary = _bench(tmp_path, "--config", str(config), "--processes", str(processes))
    assert summary["district"] == "benchopts"
    assert summary["processes"] == processes and len(summary["per_process"]) == processes
    assert summary["series"] == 5 * 2 and summary["rules"] == 4 and summary["crossing_series"] >= 1
    assert summary["lost"] == 0 and summary["stored"] == summary["published"] > 0
    assert all(0 < p["rss_mb"] < 300 for p in summary["per_process"])
    assert isinstance(summary["serve_cpu_us_per_reading"], float)
    assert summary["rss_samples"] and len(summary["rss_samples"][0]) == 1 + processes
    latency = summary["alert_latency_ms"]
    assert latency["samples"] > 0 and 0 < latency["p50"] <= latency["p99"] < 10_000
