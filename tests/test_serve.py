"""``safewatch serve`` as a subprocess against the session's real Mosquitto and InfluxDB.

Durability (contract section 7): SIGKILL mid-stream, InfluxDB down for 10 s mid-stream, and a
burst that must wait in the broker rather than in our memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.bench import count_points, rss_mb, write_config
from service.stack import StackInfo, free_port, start_influxd, stop_influxd, tie_to_parent
from simulators.loadgen import LoadResult, publish_steady
from store.influx import InfluxClient
from tests.support.helpers import wait_until
from transport.mqtt import MqttClient

ROOT = Path(__file__).resolve().parent.parent


class Serve:
    """One ``safewatch serve`` child; restartable with the same data dir and state."""

    def __init__(self, stack: StackInfo, district: str, tmp: Path, sites: int = 20) -> None:
        self.district = district
        self.config = write_config(tmp / "config.yaml", district, sites)
        self.port = free_port()
        self.log = tmp / "serve.log"
        self.env = os.environ | {
            "SAFEWATCH_MQTT_URL": stack.mqtt_url, "SAFEWATCH_INFLUX_URL": stack.influx_url,
            "SAFEWATCH_STATE_URL": f"sqlite:///{tmp / 'state.db'}", "SAFEWATCH_DATA_DIR": str(tmp / "var"),
            "SAFEWATCH_API_PORT": str(self.port), "SAFEWATCH_ADMIN_TOKEN": "test-admin-token"}
        self.proc: subprocess.Popen[bytes] | None = None
        self.influx = InfluxClient(stack.influx_url, district)

    def start(self, *extra: str) -> None:
        argv = [sys.executable, "-m", "service.cli", "serve", "--config", str(self.config), *extra]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=tie_to_parent)  # a killed pytest leaves no serve behind
        wait_until(self.healthy, 30, f"serve healthy (log {self.log})", interval=0.2)

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).json()
        return body

    def signal(self, sig: int, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def points(self) -> int:
        return count_points(self.influx)


@pytest.fixture
def serve(stack: StackInfo, district: str, tmp_path: Path) -> Iterator[Serve]:
    s = Serve(stack, district, tmp_path)
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.proc.kill()
        s.proc.wait(10)
    s.influx.close()


def publish_in_background(stack: StackInfo, serve: Serve, rate: float | None, duration: float,
                          ) -> tuple[threading.Thread, list[LoadResult]]:
    from domain import load_district
    from simulators.loadgen import series_for

    series = [s for s in series_for(load_district(serve.config)) if s[1] != "PROBE"]  # count_points skips it
    out: list[LoadResult] = []
    t = threading.Thread(target=lambda: out.append(publish_steady(stack.mqtt_url, serve.district, series, rate,
                                                                  duration, f"{serve.district}-load")))
    t.start()
    return t, out


def test_sigterm_drains_and_exits_zero(stack: StackInfo, serve: Serve) -> None:
    serve.start()
    t, out = publish_in_background(stack, serve, 2000, 2.0)
    t.join(60)
    assert serve.signal(signal.SIGTERM) == 0
    assert "stopped in" in serve.log.read_text()
    serve.start()  # whatever was not acked before the drain arrives now
    wait_until(lambda: serve.points() == out[0].published, 30, "every published reading stored")
    assert serve.signal(signal.SIGTERM) == 0


def test_sigkill_mid_stream_loses_nothing(stack: StackInfo, serve: Serve) -> None:
    serve.start()
    t, out = publish_in_background(stack, serve, 4000, 6.0)
    time.sleep(2.0)
    assert serve.signal(signal.SIGKILL) == -signal.SIGKILL
    time.sleep(1.0)  # the load keeps arriving at the broker while serve is down
    serve.start()
    t.join(60)
    published = out[0].published
    assert published > 15_000
    wait_until(lambda: serve.points() == published, 60, f"{published} readings stored after the restart")
    assert serve.signal(signal.SIGTERM) == 0


def test_influxdb_down_for_10s_mid_stream_loses_nothing(stack: StackInfo, serve: Serve) -> None:
    serve.start()
    t, out = publish_in_background(stack, serve, 2000, 14.0)
    time.sleep(2.0)
    stop_influxd(stack.data_dir)
    try:
        wait_until(lambda: serve.health()["components"]["influxdb"]["spool_depth"] > 0, 15, "spooling",
                   interval=0.5)
        assert serve.health()["status"] == "degraded"
        time.sleep(8.0)
    finally:
        start_influxd(stack.data_dir)
    t.join(60)
    published = out[0].published
    wait_until(lambda: serve.points() == published, 60, f"{published} readings stored after InfluxDB returned",
               interval=0.5)
    wait_until(lambda: serve.health()["components"]["influxdb"]["spool_depth"] == 0, 30, "spool replayed")
    assert serve.signal(signal.SIGTERM) == 0


def test_burst_and_large_payloads_keep_memory_bounded(stack: StackInfo, serve: Serve) -> None:
    serve.start()
    assert serve.proc is not None
    peak = [rss_mb(serve.proc.pid)]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.1):
            peak[0] = max(peak[0], rss_mb(serve.proc.pid))  # type: ignore[union-attr]

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        big = MqttClient(stack.mqtt_url, f"{serve.district}-big")
        big.connect(10)
        readings = [{"ts": 1_764_300_000_000 + i, "values": {"vapor_lel": 1.5, "tank_temp_c": 20.25}}
                    for i in range(4100)]
        payload = json.dumps(readings).encode()
        assert len(payload) > 300_000
        for dev in range(5):
            big.publish(f"{serve.district}/gas_station/S-0000/big{dev}/telemetry", payload, wait=True)
        big.close()
        t, out = publish_in_background(stack, serve, None, 100_000 / 30_000)  # 100k at the broker's pace
        t.join(120)
        expected = out[0].published + 5 * len(readings)
        wait_until(lambda: serve.points() == expected, 90, f"{expected} points stored", interval=0.5)
    finally:
        sampling.set()
        sampler.join()
    assert out[0].published >= 50_000
    assert peak[0] < 300, f"serve peaked at {peak[0]:.0f} MB RSS"
    assert serve.signal(signal.SIGTERM) == 0


@pytest.mark.parametrize(("env", "args", "code", "message"), [
    ({}, ["--config", "/nonexistent.yaml"], 2, "/nonexistent.yaml"),
    ({"SAFEWATCH_ADMIN_TOKEN": ""}, [], 2, "SAFEWATCH_ADMIN_TOKEN"),
    ({"SAFEWATCH_MQTT_URL": "http://x"}, [], 2, "SAFEWATCH_MQTT_URL"),
    ({}, ["--api-port", "99999"], 2, "SAFEWATCH_API_PORT"),
])
def test_refuses_bad_settings_before_connecting(tmp_path: Path, env: dict[str, str], args: list[str], code: int,
                                                message: str) -> None:
    config = write_config(tmp_path / "c.yaml", "refuse", 2)
    full = os.environ | {"SAFEWATCH_ADMIN_TOKEN": "t", "SAFEWATCH_DATA_DIR": str(tmp_path / "var"),
                         "SAFEWATCH_MQTT_URL": "mqtt://127.0.0.1:1"} | env
    argv = ["--config", str(config), *args] if "--config" not in args else args
    p = subprocess.run([sys.executable, "-m", "service.cli", "serve", *argv], env=full, cwd=ROOT,
                       capture_output=True, timeout=60)
    assert p.returncode == code, p.stderr
    assert message in p.stderr.decode()


def test_dev_generates_an_admin_token(stack: StackInfo, serve: Serve) -> None:
    serve.env = serve.env | {"SAFEWATCH_ADMIN_TOKEN": ""}
    serve.start("--dev")
    token = serve.log.read_text().split("--dev admin token: ")[1].split()[0]
    r = httpx.get(f"http://127.0.0.1:{serve.port}/api/v1/departments", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert serve.signal(signal.SIGTERM) == 0
