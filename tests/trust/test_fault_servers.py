"""Faults of the other servers under a steady load: the broker restarted mid-stream, InfluxDB down
while the load goes on (the spool drains back to 0 before the load ends), and /health noticing a
state database that disappeared under serve."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest

from service.stack import StackInfo, start_influxd, start_mosquitto, stop_influxd, stop_mosquitto
from tests.support.faults import LOADED, Load, launched, stored_times
from tests.support.helpers import wait_until
from tests.support.pg import PgServer


def test_broker_restart_mid_stream_loses_nothing_published_with_qos1(stack: StackInfo, tmp_path: Path) -> None:
    with launched(stack, tmp_path) as (serve, _api, name):
        load = Load(stack, name, rate=50)
        load.start()
        try:
            time.sleep(3)
            stop_mosquitto(stack.data_dir)
            wait_until(lambda: serve.health()[0] == 503, 10, "/health degraded with the broker away")
            assert not serve.health()[1]["components"]["mqtt"]["ok"]
            time.sleep(3)
        finally:
            start_mosquitto(stack.data_dir)
        wait_until(lambda: serve.health()[0] == 200, 20, "ingest reconnected")
        before = len(load.acked)
        wait_until(lambda: len(load.acked) > before + 50, 10, "the load goes on after the restart")
        load.stop()
        assert load.retries > 0  # the publisher did see the broker gone
        wait_until(lambda: set(load.acked) <= stored_times(stack, name, LOADED), 20,
                   f"all {len(load.acked)} acknowledged readings stored")


def spool_depth(health: dict[str, object]) -> int:
    return int(health["components"]["influxdb"]["spool_depth"])  # type: ignore[index]


def test_spool_drains_while_the_load_goes_on(stack: StackInfo, tmp_path: Path) -> None:
    with launched(stack, tmp_path) as (serve, _api, name):
        load = Load(stack, name, rate=100)
        load.start()
        try:
            time.sleep(2)
            stop_influxd(stack.data_dir)
            stopped_at = time.monotonic()
            wait_until(lambda: spool_depth(serve.health()[1]) > 0, 10, "readings spooled")
            assert serve.health()[0] == 503 and not serve.health()[1]["components"]["influxdb"]["ok"]
            time.sleep(max(0.0, 5 - (time.monotonic() - stopped_at)))
            peak = spool_depth(serve.health()[1])
        finally:
            start_influxd(stack.data_dir)
        back_at = time.monotonic()
        wait_until(lambda: spool_depth(serve.health()[1]) == 0, 20, "the spool drained under load")
        drained_s = time.monotonic() - back_at
        sent = len(load.acked)
        wait_until(lambda: len(load.acked) > sent + 100, 10, "the load still running after the drain")
        assert load.is_alive()
        load.stop()
        wait_until(lambda: set(load.acked) <= stored_times(stack, name, LOADED), 20,
                   f"all {len(load.acked)} acknowledged readings stored")
        print(json.dumps({"spool_peak_points": peak, "drained_after_return_s": round(drained_s, 2)}))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_health_notices_a_state_database_that_disappeared(stack: StackInfo, tmp_path: Path, backend: str,
                                                          request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        db = tmp_path / "state.db"
        url = f"sqlite:///{db}"
    else:
        url = request.getfixturevalue("pg_database")
        server: PgServer = request.getfixturevalue("pg_server")
    with launched(stack, tmp_path, url) as (serve, _api, _name):
        assert serve.health()[0] == 200
        if backend == "sqlite":
            for p in tmp_path.glob("state.db*"):
                p.unlink()
        else:
            dbname = url.rsplit("/", 1)[1]
            with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
        wait_until(lambda: serve.health()[0] == 503, 10, "/health degraded")
        body = serve.health()[1]
        assert body["status"] == "degraded" and not body["components"]["state"]["ok"], body
        assert body["components"]["influxdb"]["ok"] and body["components"]["mqtt"]["ok"]
