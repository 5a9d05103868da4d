"""/health and an InfluxDB outage (contract sections 4 and 5): readings are accepted while it is
down and all stored, in order, once it is back (spool replay)."""

from __future__ import annotations

from typing import Any

from service.stack import StackInfo, start_influxd, stop_influxd
from tests.e2e.conftest import Deployment
from tests.support.e2e.clients import now_ms
from tests.support.helpers import influx_ping, influx_rows, wait_until

GS, SITE = "gas_station", "GS-OUT"


def points(stack: StackInfo, db: str) -> list[dict[str, Any]]:
    return influx_rows(stack, db, f"SELECT * FROM \"{GS}\" WHERE \"site\" = '{SITE}'")


def test_health_reports_ok_with_its_components(deployment: Deployment) -> None:
    code, body = deployment.serve.health()
    assert code == 200 and body["status"] == "ok", body
    assert {"mqtt", "influxdb", "state"} <= set(body["components"])
    for name, component in body["components"].items():  # the contract's least: {"ok", "detail"}
        assert component["ok"] is True and isinstance(component["detail"], str), (name, component)


def test_readings_survive_an_influxdb_outage(stack: StackInfo, deployment: Deployment) -> None:
    d, serve = deployment.devices, deployment.serve
    t0 = now_ms() - 60_000
    d.send(GS, SITE, "probe-1", {"tank_level_pct": 50.0}, ts=t0)
    wait_until(lambda: len(points(stack, deployment.name)) == 1, 15, "the first reading stored")
    accepted = serve.counter("reading", "accept")
    stop_influxd(stack.data_dir)
    try:
        n = 12
        for i in range(1, n + 1):
            d.send(GS, SITE, "probe-1", {"tank_level_pct": 50.0 + i}, ts=t0 + 1000 * i)
        wait_until(lambda: serve.counter("reading", "accept") - accepted >= n, 15,
                   "readings accepted while InfluxDB is down")
        wait_until(lambda: serve.health()[0] == 503, 20, "/health 503 while InfluxDB is down", interval=0.5)
        assert serve.health()[1]["status"] == "degraded"
    finally:
        start_influxd(stack.data_dir)
    assert influx_ping(stack)
    wait_until(lambda: len(points(stack, deployment.name)) == n + 1, 45,
               "every reading stored after InfluxDB returned", interval=0.5)
    rows = sorted(points(stack, deployment.name), key=lambda r: r["time"])
    assert [r["tank_level_pct"] for r in rows] == [50.0 + i for i in range(n + 1)]
    wait_until(lambda: serve.health()[0] == 200, 30, "/health back to 200", interval=0.5)
