"""The same machine's limits, measured in the same run as ``serve``: the broker's and InfluxDB's.

The broker ceiling: the load generator into a subscriber that only counts. InfluxDB's:
5,000-point line-protocol batches straight to /write, one request at a time.
"""

from __future__ import annotations

import time

from service.stack import StackInfo
from simulators.loadgen import LoadResult, run_load
from store.influx import InfluxClient
from transport.mqtt import Message, MqttClient


def broker_ceiling(stack: StackInfo, series: list[tuple[str, str, str]], seconds: float,
                   publishers: int) -> tuple[float, LoadResult]:
    """Messages/s a paho subscriber that only counts receives, and what the publishers managed."""
    count = [0, 0.0, 0.0]

    def on_message(m: Message) -> None:
        if count[0] == 0:
            count[1] = time.monotonic()
        count[0] += 1
        count[2] = time.monotonic()

    sub = MqttClient(stack.mqtt_url, "bench-ceiling-counter")
    sub.subscribe(["ceiling/+/+/+/telemetry"], 1, on_message)
    sub.connect(10)
    try:
        load = run_load(stack.mqtt_url, "ceiling", series, None, seconds, publishers)
        deadline = time.monotonic() + 60
        while count[0] < load.published and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sub.close()
    span = count[2] - count[1]
    return (count[0] / span if span > 0 else 0.0), load


def influx_ceiling(stack: StackInfo, seconds: float, batch: int = 5000) -> float:
    """Points/s InfluxDB takes in ``batch``-point line-protocol requests, one at a time."""
    client = InfluxClient(stack.influx_url, "bench_ceiling", compress=False)
    client.ensure_database()
    base = int(time.time() * 1000) - 3_600_000
    bodies = [b"\n".join(b"gas_station,device=d%d,site=S-%04d,street=s1 vapor_lel=%d.5,tank_temp_c=20.1 %d"
                         % (i % 2, i % 300, i % 90, base + k * batch + i) for i in range(batch))
              for k in range(20)]
    points, t0 = 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            client.write(bodies[(points // batch) % len(bodies)])
            points += batch
        return points / (time.monotonic() - t0)
    finally:
        client.close()
