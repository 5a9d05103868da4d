"""The bench's offered load: steady QoS 1 telemetry from separate publisher processes.

Like ``simulators.loadgen`` (which the broker ceiling uses), but each series carries the
values of its own plan (``service.bench.district``), so a district's every rule can be
exercised; a message carries at most three of them (the synthetic district's size): the
series' first metric always, the others in turn, so districts compare on their rules alone.
Each process owns a disjoint slice of the series, so every series gets strictly
increasing timestamps and every message becomes its own InfluxDB point: the count of points
can be compared with the count of messages the broker acknowledged.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

from service.bench.district import SeriesPlan
from simulators.loadgen import LoadResult, run_workers
from simulators.pipelined import PipelinedPublisher

CHUNK = 1000
VALUES_PER_MESSAGE = 3  # as many as the synthetic district's messages carry


def _payload(profile: Sequence[tuple[str, float, float]], ts_ms: int, rng: random.Random) -> bytes:
    values = ",".join(f'"{m}":{base + spread * (rng.random() - 0.5):.3f}' if spread else f'"{m}":{base:g}'
                      for m, base, spread in profile)
    return f'{{"ts":{ts_ms},"values":{{{values}}}}}'.encode()


def publish_plan(url: str, district: str, series: Sequence[SeriesPlan], rate: float | None, duration: float,
                 client_id: str, window: int = 20000, seed: int = 0) -> LoadResult:
    """Round-robin over ``series`` at ``rate`` msg/s (None: as fast as the broker takes)."""
    if not series:
        raise ValueError("the bench's load has no series (the config has no sites)")
    rng = random.Random(seed)
    topics = [f"{district}/{f}/{s}/{d}/telemetry".encode() for f, s, d, _ in series]
    # Each message carries at most VALUES_PER_MESSAGE values: the series' first metric in every
    # one (so that metric's count in InfluxDB is the count of points) and the others in turn.
    rest = VALUES_PER_MESSAGE - 1
    chunks = [[p[:1] + p[i:i + rest] for i in range(1, len(p), rest)] or [p] for *_, p in series]
    sent = [0] * len(series)
    last_ts = [0] * len(series)
    pub = PipelinedPublisher(url, client_id, window=window)
    i = 0
    start = time.monotonic()
    end = start + duration
    try:
        while (now := time.monotonic()) < end:
            due = CHUNK if rate is None else int(rate * (now - start)) - pub.sent
            room = pub.window - pub.inflight
            n = min(due, room, CHUNK)
            if n <= 0:
                pub.poll(0.002 if room > 0 else 0.01)
                continue
            now_ms = int(time.time() * 1000)
            batch = []
            for _ in range(n):
                k = i % len(series)
                ts = max(now_ms, last_ts[k] + 1)  # distinct per series: one message, one point
                last_ts[k] = ts
                parts = chunks[k]
                batch.append((topics[k], _payload(parts[sent[k] % len(parts)], ts, rng)))
                sent[k] += 1
                i += 1
            pub.publish_many(batch)
            pub.poll(0)
        pub.drain(timeout=60.0)
        seconds = time.monotonic() - start
    finally:
        pub.close()
    return LoadResult(pub.acked, pub.sent, seconds, pub.acked / seconds if seconds else 0.0, 1)


def run_load(url: str, district: str, series: Sequence[SeriesPlan], rate: float | None, duration: float,
             publishers: int = 2) -> LoadResult:
    """Split ``series`` across ``publishers`` interpreters (off the caller's GIL); sum their results."""
    publishers = max(1, min(publishers, len(series)))
    specs = [{"url": url, "district": district, "series": [list(s) for s in series[n::publishers]],
              "rate": None if rate is None else rate / publishers, "duration": duration,
              "client_id": f"bench-load-{n}-{time.time_ns()}", "seed": n} for n in range(publishers)]
    return run_workers(["-m", "service.bench.load"], specs, duration + 90.0, "bench load publisher")


def _worker() -> int:
    spec = json.loads(sys.stdin.read())
    series: list[SeriesPlan] = [(f, s, d, tuple((m, float(b), float(w)) for m, b, w in p))
                                for f, s, d, p in spec["series"]]
    result = publish_plan(spec["url"], spec["district"], series, spec["rate"], spec["duration"],
                          spec["client_id"], seed=spec["seed"])
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
