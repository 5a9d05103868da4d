"""Several ``safewatch serve`` processes on one PostgreSQL, a steady load, and the cluster's view.

Used by the failover tests (tests/test_cluster_failover.py) and the network namespace test.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from service.partitions import partition_of
from service.stack import StackInfo
from tests.support.e2e.serve_process import ADMIN_TOKEN, ServeProcess
from transport.mqtt import MqttClient

SITES = [f"C-{i:02d}" for i in range(12)]
RULE = "lel-high"


def write_config(path: Path, district: str, sites: list[str] = SITES) -> Path:
    lines = [f"district: {district}", "timezone: UTC",
             "departments: [{id: sector_a, name: Sector, kind: sector},"
             " {id: office_a, name: Office, kind: territorial}]",
             "streets: [{id: st1, name: Street, office: office_a}]", "sites:"]
    lines += [f"  - {{id: {s}, name: Site {s}, family: gas_station, street: st1, sector: sector_a}}" for s in sites]
    lines += ["rules:",
              f"  - {{id: {RULE}, family: gas_station, metric: vapor_lel, kind: threshold, direction: above,"
              " levels: {red: 50}, hysteresis: 2}",
              "routing:", "  - {match: {}, notify: [sector, street]}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def serve(stack: StackInfo, config: Path, workdir: Path, state_url: str, partitions: int, ttl: str,
          **extra: str) -> ServeProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    proc = ServeProcess(stack, config, workdir)
    proc.env.update({"SAFEWATCH_STATE_URL": state_url, "SAFEWATCH_PARTITIONS": str(partitions),
                     "SAFEWATCH_LEASE_TTL": ttl, "SAFEWATCH_WEBHOOK_ALLOW": "127.0.0.1"})
    proc.env.update({f"SAFEWATCH_{k.upper()}": v for k, v in extra.items()})
    return proc


def cluster(base_url: str) -> dict[str, Any]:
    resp = httpx.get(f"{base_url}/api/v1/cluster", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def owners(base_url: str) -> dict[int, str | None]:
    return {p["partition"]: p["owner"] for p in cluster(base_url)["partitions"]}


def pids_by_id(base_url: str) -> dict[str, int]:
    return {p["id"]: p["pid"] for p in cluster(base_url)["processes"]}


class Load:
    """Publishes one reading per message, round-robin over the sites, at ``rate`` msg/s (QoS 1);
    ``hot[site] = value`` sends that value for the site instead of a quiet one."""

    def __init__(self, mqtt_url: str, district: str, sites: list[str] = SITES, rate: float = 300) -> None:
        self.district, self.sites, self.rate = district, sites, rate
        self.client = MqttClient(mqtt_url, f"{district}-load-{uuid.uuid4().hex[:6]}")
        self.client.connect(10)
        self.hot: dict[str, float] = {}
        self.sent = 0
        self._stop = threading.Event()
        self._last: dict[str, int] = {}
        self.log: list[tuple[str, int]] = []  # (site, ts) of every message, to name what is missing
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        i = 0
        while not self._stop.is_set():
            due = int((time.monotonic() - t0) * self.rate) - self.sent
            if due <= 0:
                time.sleep(0.005)
                continue
            for _ in range(min(due, 200)):
                site = self.sites[i % len(self.sites)]
                i += 1
                ts = max(int(time.time() * 1000), self._last.get(site, 0) + 1)
                self._last[site] = ts
                value = self.hot.get(site, 5.0)
                body = json.dumps({"ts": ts, "values": {"vapor_lel": value}})
                self.client.publish(f"{self.district}/gas_station/{site}/dev-1/telemetry", body, qos=1)
                self.log.append((site, ts))
                self.sent += 1

    def stop(self) -> int:
        """Stops and waits for every PUBACK; returns the number published."""
        self._stop.set()
        self._thread.join(10)
        self.client.close(30)
        return self.sent


def site_in(partition: int, n: int, sites: list[str] = SITES) -> str:
    return next(s for s in sites if partition_of(s, n) == partition)


def missing(influx: Any, load: Load) -> list[tuple[str, int]]:
    """(site, ts) published but not stored: what a failed count is made of."""
    stored: set[tuple[str, int]] = set()
    for series in influx.query('SELECT "vapor_lel" FROM "gas_station" GROUP BY "site"'):
        site = series.get("tags", {}).get("site")
        for row in series["values"]:
            stored.add((site, int(row[0])))
    return [x for x in load.log if x not in stored]
