"""The benchmark's load generator: steady QoS 1 telemetry from several publisher processes.

Each process owns a disjoint slice of the (site, device) series, so every series gets
strictly increasing timestamps and every message becomes its own InfluxDB point: a count
of points can then be compared with the count of messages the broker acknowledged.
Payloads are realistic three-value readings of the site's family, within physical range.

Run alone: ``python -m simulators.loadgen --config FILE --mqtt-url URL --rate N --duration S``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from domain.district import District, load_district
from simulators.pipelined import PipelinedPublisher

# Three metrics per family with a plausible base value and spread (all well inside the ranges).
_PROFILES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "gas_station": (("vapor_lel", 2.0, 1.5), ("tank_pressure_kpa", 4.0, 2.0), ("tank_temp_c", 18.0, 4.0)),
    "crowd_venue": (("occupancy", 800.0, 400.0), ("inflow_per_min", 40.0, 20.0),
                    ("outflow_per_min", 38.0, 20.0)),
    "underground": (("co_ppm", 5.0, 3.0), ("o2_pct", 20.8, 0.2), ("temp_c", 16.0, 3.0)),
}

_ROOT = Path(__file__).resolve().parent.parent  # so ``-m simulators.loadgen`` resolves anywhere
Series = tuple[str, str, str]  # (family, site, device)


@dataclass(frozen=True)
class LoadResult:
    published: int  # acknowledged by the broker
    sent: int
    seconds: float  # from the first message to the last PUBACK
    rate_per_s: float
    publishers: int


def series_for(district: District, devices_per_site: int = 2) -> list[Series]:
    return [(s.family, s.id, f"d{n}") for s in district.sites.values()
            for n in range(1, devices_per_site + 1)]


def payload(family: str, ts_ms: int, rng: random.Random) -> bytes:
    profile = _PROFILES[family]
    values = ",".join(f'"{name}":{max(0.0, base + spread * (rng.random() - 0.5)):.2f}'
                      for name, base, spread in profile)
    return f'{{"ts":{ts_ms},"values":{{{values}}}}}'.encode()


def publish_steady(url: str, district: str, series: Sequence[Series], rate: float | None, duration: float,
                   client_id: str, window: int = 20000, seed: int = 0) -> LoadResult:
    """Publish round-robin over ``series`` at ``rate`` msg/s (None: as fast as the broker takes)."""
    if not series:
        raise ValueError("publish_steady needs at least one series (the config has no sites)")
    rng = random.Random(seed)
    topics = [f"{district}/{f}/{s}/{d}/telemetry".encode() for f, s, d in series]
    last_ts = [0] * len(series)
    pub = PipelinedPublisher(url, client_id, window=window)
    chunk_max = 1000
    i = 0
    start = time.monotonic()
    end = start + duration
    try:
        while (now := time.monotonic()) < end:
            due = (chunk_max if rate is None else int(rate * (now - start)) - pub.sent)
            room = pub.window - pub.inflight
            n = min(due, room, chunk_max)
            if n <= 0:
                pub.poll(0.002 if room > 0 else 0.01)
                continue
            now_ms = int(time.time() * 1000)
            batch = []
            for _ in range(n):
                k = i % len(series)
                ts = max(now_ms, last_ts[k] + 1)  # distinct per series: one message, one point
                last_ts[k] = ts
                batch.append((topics[k], payload(series[k][0], ts, rng)))
                i += 1
            pub.publish_many(batch)
            pub.poll(0)
        pub.drain(timeout=60.0)
        seconds = time.monotonic() - start
    finally:
        pub.close()
    return LoadResult(pub.acked, pub.sent, seconds, pub.acked / seconds if seconds else 0.0, 1)


def run_load(url: str, district: str, series: Sequence[Series], rate: float | None, duration: float,
             publishers: int = 2, timeout: float | None = None) -> LoadResult:
    """Split ``series`` across ``publishers`` processes; sum what they published.

    Publishers are separate interpreters (``python -m simulators.loadgen --worker``), so the
    load never competes for the caller's GIL and the caller may hold threads of its own.
    """
    publishers = max(1, min(publishers, len(series)))
    specs = [{"url": url, "district": district, "series": list(series[n::publishers]),
              "rate": None if rate is None else rate / publishers, "duration": duration,
              "client_id": f"loadgen-{n}-{time.time_ns()}", "seed": n} for n in range(publishers)]
    return run_workers(["-m", "simulators.loadgen", "--worker"], specs,
                       timeout if timeout is not None else duration + 90.0, "load publisher")


def run_workers(argv: Sequence[str], specs: Sequence[dict[str, Any]], timeout: float, what: str) -> LoadResult:
    """Starts one ``python ARGV`` per spec (the spec as JSON on stdin, a LoadResult as JSON on
    stdout) and sums their results; raises RuntimeError naming ``what`` if one fails."""
    procs = []
    for spec in specs:
        p = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=_ROOT)
        assert p.stdin is not None
        p.stdin.write(json.dumps(spec).encode())
        p.stdin.close()
        p.stdin = None  # communicate() below must not touch it again
        procs.append(p)
    results: list[LoadResult] = []
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            if p.returncode != 0:
                raise RuntimeError(f"{what} exited with {p.returncode}: {err.decode()[-2000:]}")
            results.append(LoadResult(**json.loads(out)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5.0)
    seconds = max(r.seconds for r in results)
    published = sum(r.published for r in results)
    return LoadResult(published, sum(r.sent for r in results), seconds,
                      published / seconds if seconds else 0.0, len(procs))


def _worker_main() -> int:
    spec = json.loads(sys.stdin.read())
    series = [(f, s, d) for f, s, d in spec["series"]]
    result = publish_steady(spec["url"], spec["district"], series, spec["rate"], spec["duration"],
                            spec["client_id"], seed=spec["seed"])
    print(json.dumps(asdict(result)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--worker"]:
        return _worker_main()
    p = argparse.ArgumentParser(prog="python -m simulators.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--mqtt-url", required=True)
    p.add_argument("--rate", type=float, default=None, help="messages/s in all (default: max)")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--publishers", type=int, default=2)
    p.add_argument("--devices-per-site", type=int, default=2)
    args = p.parse_args(argv)
    district = load_district(args.config)
    result = run_load(args.mqtt_url, district.name, series_for(district, args.devices_per_site), args.rate,
                      args.duration, args.publishers)
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
