"""``safewatch bench`` (contract section 8): throughput, loss, alert latency and memory of one ``serve``.

In one run, on its own stack in a temporary directory: the broker's ceiling (the load
generator into a subscriber that only counts), InfluxDB's ceiling (5,000-point batches
straight to /write), then ``serve`` under a steady load from separate publisher processes,
with webhook probes for alert latency. Prints one JSON object, last.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from domain.district import load_district
from service.stack import StackInfo, free_port, stack_down, stack_up
from simulators.loadgen import LoadResult, run_load, series_for
from store.influx import InfluxClient
from transport.mqtt import Message, MqttClient

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "bench-admin-token"


def write_config(path: Path, district: str, sites: int) -> Path:
    """A config with ``sites`` sites spread over the three families, and one probe rule."""
    families = ("gas_station", "crowd_venue", "underground")
    lines = [f"district: {district}", "timezone: UTC",
             "departments: [{id: bench_sector, name: Sector, kind: sector}, "
             "{id: bench_office, name: Office, kind: territorial}]",
             "streets: [{id: s1, name: Street, office: bench_office}]", "sites:"]
    for n in range(sites):
        fam = families[n % 3]
        extra = ", capacity: 5000, area_m2: 2000" if fam == "crowd_venue" else ""
        lines.append(f"  - {{id: S-{n:04d}, name: Site {n}, family: {fam}, street: s1, sector: bench_sector{extra}}}")
    lines += ["  - {id: PROBE, name: Probe, family: gas_station, street: s1, sector: bench_sector}",
              "rules:",
              "  - {id: probe-level, family: gas_station, metric: vapor_lel, kind: threshold, levels: {red: 50}}",
              "routing:", "  - {match: {}, notify: [sector]}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def count_points(client: InfluxClient, exclude_site: str = "PROBE") -> int:
    """Readings in the database: every measurement but alert events (the largest field count of
    each), leaving out the latency probes' site."""
    total = 0
    for s in client.query("SELECT COUNT(*) FROM /.*/ WHERE \"site\" != $site", {"site": exclude_site}):
        if s["name"] != "alert_event":
            total += max(v for v in s["values"][0][1:] if v is not None)
    return total


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of ``pid`` (``VmHWM``: its peak so far), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


class _Serve:
    def __init__(self, stack: StackInfo, config: Path, data: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = os.environ | {
            "SAFEWATCH_MQTT_URL": stack.mqtt_url, "SAFEWATCH_INFLUX_URL": stack.influx_url,
            "SAFEWATCH_STATE_URL": f"sqlite:///{data / 'state.db'}", "SAFEWATCH_DATA_DIR": str(data / "var"),
            "SAFEWATCH_API_PORT": str(self.port), "SAFEWATCH_ADMIN_TOKEN": ADMIN_TOKEN,
            "SAFEWATCH_LOG_LEVEL": "WARNING"}
        self.log = open(data / "serve.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(config)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not become healthy; see {data / 'serve.log'}")
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class LatencyProbe:
    """Alert latency: a reading past the probe rule's level is published (each from a new device,
    so each fires its own alert) and the time until its ``fired`` webhook arrives is recorded."""

    SECRET = b"bench-secret"

    def __init__(self, mqtt_url: str, api_base: str, token: str, district: str) -> None:
        self.api_base, self.token, self.district = api_base, token, district
        self.sent: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.bad_signatures = 0
        probe = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.monotonic()
                expected = "sha256=" + hmac.new(probe.SECRET, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Safewatch-Signature", "")):
                    probe.bad_signatures += 1
                event = json.loads(body)
                if event.get("type") == "fired":
                    probe.received.setdefault(event["alert"]["device"], at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self._mqtt = MqttClient(mqtt_url, "bench-probe")

    def start(self) -> None:
        threading.Thread(target=self._http.serve_forever, name="webhook-receiver", daemon=True).start()
        url = f"http://127.0.0.1:{self._http.server_address[1]}/hook"
        r = httpx.post(f"{self.api_base}/api/v1/subscriptions", timeout=10,
                       headers={"Authorization": f"Bearer {self.token}"},
                       json={"channel": "webhook", "url": url, "secret": self.SECRET.decode(),
                             "min_severity": "blue", "department": "bench_sector", "sites": ["PROBE"]})
        r.raise_for_status()
        self._mqtt.connect(10)

    def run(self, duration: float, probes: int = 60) -> None:
        for n in range(probes):
            device = f"probe{n}"
            body = json.dumps({"ts": int(time.time() * 1000), "values": {"vapor_lel": 60.0}})
            self.sent[device] = time.monotonic()
            self._mqtt.publish(f"{self.district}/gas_station/PROBE/{device}/telemetry", body, qos=1)
            time.sleep(duration / probes)
        deadline = time.monotonic() + 30
        while len(self.received) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.1)

    def summary(self) -> dict[str, float | int | None]:
        ms = sorted((self.received[d] - t) * 1000 for d, t in self.sent.items() if d in self.received)
        if not ms:
            return {"p50": None, "p99": None, "samples": 0, "sent": len(self.sent)}
        return {"p50": round(ms[len(ms) // 2], 1), "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
                "samples": len(ms), "sent": len(self.sent), "bad_signatures": self.bad_signatures}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._mqtt.close()


def _wait_stored(client: InfluxClient, expected: int, timeout: float) -> tuple[int, float]:
    """(points stored, when the last of them became visible): polls until all or no progress."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = count_points(client)
        if n != last:
            last, last_change = n, time.monotonic()
        if n >= expected or time.monotonic() - last_change > 15:
            break
        time.sleep(0.25)
    return last, last_change


def measure_serve(stack: StackInfo, data: Path, sites: int, rate: float | None, duration: float,
                  publishers: int) -> dict[str, Any]:
    district = "bench"
    data.mkdir(parents=True, exist_ok=True)
    config = write_config(data / "config.yaml", district, sites)
    series = [s for s in series_for(load_district(config)) if s[1] != "PROBE"]
    serve = _Serve(stack, config, data)
    client = InfluxClient(stack.influx_url, district)
    probe = LatencyProbe(stack.mqtt_url, serve.base, ADMIN_TOKEN, district)
    try:
        probe.start()
        cpu0, t0 = cpu_seconds(serve.proc.pid), time.monotonic()
        probing = threading.Thread(target=probe.run, args=(duration,), daemon=True)
        probing.start()
        load = run_load(stack.mqtt_url, district, series, rate, duration, publishers)
        stored, visible_at = _wait_stored(client, load.published, 120)
        cpu = cpu_seconds(serve.proc.pid) - cpu0
        probing.join(30)
        rss = rss_mb(serve.proc.pid, "VmHWM")
        elapsed = visible_at - t0
        return {"readings_per_s": round(stored / elapsed) if elapsed > 0 else 0,
                "lost": load.published - stored, "published": load.published, "stored": stored,
                "publisher_rate_per_s": round(load.rate_per_s), "rss_mb": round(rss, 1),
                "serve_cpu_us_per_reading": round(cpu / stored * 1e6, 1) if stored else None,
                "alert_latency_ms": probe.summary()}
    finally:
        probe.close()
        serve.stop()
        client.close()


def run_bench(args: argparse.Namespace) -> int:
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="safewatch-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    publishers = args.publishers or 2
    stack = stack_up(data / "stack", die_with_parent=True)
    result: dict[str, Any] = {"duration_s": args.duration, "publishers": publishers, "mqtt_protocol": "3.1.1"}
    try:
        print("bench: measuring the broker ceiling ...", file=sys.stderr, flush=True)
        series = [("gas_station", f"S-{n:04d}", f"d{d}") for n in range(300) for d in (1, 2)]
        warmup = min(8.0, max(2.0, args.duration / 3))  # each ceiling: a few seconds is enough
        ceiling, load = broker_ceiling(stack, series, warmup, publishers)
        result["broker_ceiling_per_s"] = round(ceiling)
        result["publisher_max_per_s"] = round(load.rate_per_s)
        print("bench: measuring the InfluxDB ceiling ...", file=sys.stderr, flush=True)
        result["influx_ceiling_per_s"] = round(influx_ceiling(stack, warmup))
        rate = args.rate if args.rate else 16_000.0
        result["offered_rate_per_s"] = rate
        print(f"bench: serve under {rate:.0f} readings/s for {args.duration:g}s ...", file=sys.stderr, flush=True)
        result |= measure_serve(stack, data / "serve", 300, rate, args.duration, publishers)
    finally:
        stack_down(data / "stack")
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result.get("lost", 1) == 0 else 1
