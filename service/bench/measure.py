"""``serve`` under a steady load: throughput end to end, loss, CPU per reading, memory, alert latency."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from service.bench.district import BenchDistrict
from service.bench.load import run_load
from service.bench.probe import LatencyProbe
from service.bench.procs import ADMIN_TOKEN, RssSampler, ServeGroup
from service.bench.takeover import KillOne
from service.stack import StackInfo
from store.influx import InfluxClient


def count_points(client: InfluxClient, exclude_site: str = "PROBE") -> int:
    """Readings in the database: every measurement but alert events (the largest field count of
    each), leaving out the latency probes' site."""
    total = 0
    for s in client.query("SELECT COUNT(*) FROM /.*/ WHERE \"site\" != $site", {"site": exclude_site}):
        if s["name"] != "alert_event":
            total += max(v for v in s["values"][0][1:] if v is not None)
    return total


def _wait_stored(client: InfluxClient, expected: int, exclude_site: str, timeout: float) -> tuple[int, float]:
    """(points stored, when the last of them became visible): polls until all or no progress."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = count_points(client, exclude_site)
        if n != last:
            last, last_change = n, time.monotonic()
        if n >= expected or time.monotonic() - last_change > 30:
            break
        time.sleep(0.25)
    return last, last_change


def measure_serve(stack: StackInfo, data: Path, bench: BenchDistrict, state_url: str, processes: int,
                  rate: float | None, duration: float, publishers: int, kill_one: bool = False) -> dict[str, Any]:
    group = ServeGroup(stack, bench.config, data, state_url, processes)
    killer = KillOne(group, duration / 2) if kill_one else None
    client = InfluxClient(stack.influx_url, bench.name)
    probe = LatencyProbe(stack.mqtt_url, group.first.base, ADMIN_TOKEN, bench.name, bench.probe)
    sampler = RssSampler(group)
    try:
        probe.start()
        sampler.start()
        cpu0, t0 = group.cpu_seconds(), time.monotonic()
        probing = threading.Thread(target=probe.run, args=(duration,), daemon=True)
        probing.start()
        if killer is not None:
            killer.start()
        load = run_load(stack.mqtt_url, bench.name, bench.series, rate, duration, publishers)
        visible, visible_at = _wait_stored(client, load.published, bench.probe.site, 900)
        cpu = group.cpu_seconds() - cpu0
        probing.join(30)
        peaks = group.rss_mb("VmHWM")
        elapsed = visible_at - t0
        takeover = killer.join() if killer is not None else {}
        # Loss is judged after a drain: SIGTERM writes everything taken in (a run on a busy machine
        # can stall longer than the polling above waits), and the broker kept the rest for a restart.
        # The rate and the CPU per reading stay with what was visible when the clock stopped: a count
        # taken after the drain over a time taken before it would overstate the rate.
        group.stop()
        stored = max(visible, count_points(client, bench.probe.site))
        return takeover | {"readings_per_s": round(visible / elapsed) if elapsed > 0 else 0,
                "lost": load.published - stored, "published": load.published, "stored": stored,
                "publisher_rate_per_s": round(load.rate_per_s), "processes": processes,
                "rss_mb": max(peaks), "per_process": [{"pid": m.pid, "rss_mb": r} for m, r in zip(
                    group.members, peaks, strict=True)],
                "serve_cpu_us_per_reading": round(cpu / visible * 1e6, 1) if visible else None,
                "alert_latency_ms": probe.summary(), "rss_samples": sampler.stop(),
                "series": len(bench.series), "rules": bench.rules, "crossing_series": bench.crossing}
    finally:
        sampler.stop()
        probe.close()
        group.stop()
        client.close()
