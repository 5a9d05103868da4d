"""Support for the fault tests: a small district of their own, a serve per test, a steady load.

Every fault test runs ``safewatch serve`` as a child process against the session's real
Mosquitto and InfluxDB (and the suite's own PostgreSQL where the state database matters),
and breaks one of them for real: SIGKILL, stopping a server, deleting a database.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.stack import StackInfo
from tests.support.e2e.clients import Api
from tests.support.e2e.district import write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN, ServeProcess
from tests.support.helpers import influx_rows
from transport.mqtt import MqttClient, MqttError

FAMILY, INCIDENT, LOADED, RULE = "gas_station", "GS-INC", "GS-LOAD", "vapor"


def fault_district(name: str) -> dict[str, Any]:
    return {
        "district": name,
        "timezone": "Asia/Urumqi",
        "departments": [{"id": "trade", "name": "Trade", "kind": "sector"},
                        {"id": "office", "name": "Office", "kind": "territorial"}],
        "streets": [{"id": "main", "name": "Main", "office": "office"}],
        "sites": [{"id": s, "name": f"Station {s}", "family": FAMILY, "street": "main", "sector": "trade"}
                  for s in (INCIDENT, LOADED)],
        "rules": [{"id": RULE, "family": FAMILY, "metric": "vapor_lel", "kind": "threshold",
                   "levels": {"yellow": 20, "red": 50}, "hysteresis": 2, "for": "0s"}],
        "routing": [{"match": {}, "notify": ["sector", "street"]}],
    }


@contextmanager
def launched(stack: StackInfo, workdir: Path, state_url: str | None = None,
             **env: str) -> Iterator[tuple[ServeProcess, Api, str]]:
    """A serve of a fresh district (its name is also the InfluxDB database); killed at the end."""
    name = f"f_{uuid.uuid4().hex[:8]}"
    config = write_config(workdir / "district.yaml", fault_district(name))
    serve = ServeProcess(stack, config, workdir)
    if state_url is not None:
        serve.env["SAFEWATCH_STATE_URL"] = state_url
    serve.env.update({f"SAFEWATCH_{k.upper()}": v for k, v in env.items()})
    try:
        serve.start()
        yield serve, Api(serve.base_url, ADMIN_TOKEN), name
    finally:
        if serve.alive():
            serve.kill()


def topic(district: str, site: str, device: str = "d1") -> str:
    return f"{district}/{FAMILY}/{site}/{device}/telemetry"


def stored_times(stack: StackInfo, db: str, site: str) -> set[int]:
    rows = influx_rows(stack, db, f"SELECT * FROM \"{FAMILY}\" WHERE \"site\" = '{site}'")
    return {int(r["time"]) for r in rows}


class Load(threading.Thread):
    """Publishes one reading every ``1/rate`` s at QoS 1 on LOADED, each with its own timestamp,
    and retries one until the broker acknowledges it: ``acked`` holds the stamps it has."""

    def __init__(self, stack: StackInfo, district: str, rate: float = 50.0) -> None:
        super().__init__(name="fault-load", daemon=True)
        self.client = MqttClient(stack.mqtt_url, f"{district}-load-{uuid.uuid4().hex[:6]}")
        self.client.connect(10.0)
        self.topic = topic(district, LOADED)
        self.period = 1.0 / rate
        self.acked: list[int] = []
        self.retries = 0
        self.stopped = threading.Event()
        self._t0 = int(time.time() * 1000) - 60_000  # distinct past stamps: never "in the future"

    def run(self) -> None:
        i = 0
        while not self.stopped.is_set():
            stamp = self._t0 + i
            body = json.dumps({"ts": stamp, "values": {"vapor_lel": 1.0}})
            while not self.stopped.is_set():
                try:
                    self.client.publish(self.topic, body, qos=1, wait=True, timeout=2.0)
                    break
                except MqttError:  # the broker is away: this reading is not published yet
                    self.retries += 1
                    time.sleep(0.2)
            else:
                return
            self.acked.append(stamp)
            i += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self.stopped.set()
        self.join(15)
        self.client.close()
