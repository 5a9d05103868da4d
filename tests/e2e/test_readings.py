"""Readings in, readings out: MQTT telemetry → InfluxDB points, rejections, history and trend.

Contract sections 3 (MQTT inbound), 4 (InfluxDB schema) and 5 (/metrics, /history, /trend).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from service.stack import StackInfo
from tests.e2e.conftest import Deployment
from tests.support.e2e.clients import now_ms
from tests.support.helpers import cli_publish, influx_query, influx_rows, wait_until

GS = "gas_station"


def stored(stack: StackInfo, db: str, measurement: str, site: str) -> list[dict[str, Any]]:
    return influx_rows(stack, db, f"SELECT * FROM \"{measurement}\" WHERE \"site\" = '{site}'")


def field_types(stack: StackInfo, db: str, measurement: str) -> dict[str, str]:
    body = influx_query(stack, db, f'SHOW FIELD KEYS FROM "{measurement}"')
    series = body["results"][0].get("series", [])
    return {name: kind for s in series for name, kind in s["values"]}


def test_telemetry_object_and_array_become_points(stack: StackInfo, deployment: Deployment) -> None:
    d, db = deployment.devices, deployment.name
    t0 = now_ms() - 60_000
    # An integer value must still land in a float field: a later 3.5 would otherwise be refused.
    d.send(GS, "GS-RD", "pump-1", {"vapor_lel": 3.5, "tank_pressure_kpa": 2, "leak": 0}, ts=t0)
    buffered = [{"ts": t0 + 1000 * i, "values": {"tank_temp_c": 20.0 + i}} for i in range(1, 4)]
    d.raw(d.topic(GS, "GS-RD", "tank-1"), json.dumps(buffered))
    rfc3339 = datetime.fromtimestamp((t0 + 5000) / 1000, UTC).isoformat(timespec="milliseconds")
    d.raw(d.topic(GS, "GS-RD", "tank-1"), json.dumps({"ts": rfc3339, "values": {"tank_level_pct": 61.5}}))

    before_untimed = now_ms()
    d.raw(d.topic(GS, "GS-RD", "untimed"), json.dumps({"values": {"tank_level_pct": 70}}))  # no ts: receipt time
    wait_until(lambda: len(stored(stack, db, GS, "GS-RD")) == 6, 20, "6 points of GS-RD in InfluxDB")
    untimed = [r for r in stored(stack, db, GS, "GS-RD") if r["device"] == "untimed"]
    assert len(untimed) == 1 and before_untimed - 1000 <= untimed[0]["time"] <= now_ms()
    assert untimed[0]["tank_level_pct"] == 70.0
    rows = sorted((r for r in stored(stack, db, GS, "GS-RD") if r["device"] != "untimed"), key=lambda r: r["time"])
    assert [r["time"] for r in rows] == [t0, t0 + 1000, t0 + 2000, t0 + 3000, t0 + 5000]  # ms kept exactly
    assert {(r["site"], r["street"]) for r in rows} == {("GS-RD", "street_a")}
    assert [r["device"] for r in rows] == ["pump-1", "tank-1", "tank-1", "tank-1", "tank-1"]
    assert (rows[0]["vapor_lel"], rows[0]["tank_pressure_kpa"], rows[0]["leak"]) == (3.5, 2.0, 0.0)
    assert [r["tank_temp_c"] for r in rows[1:4]] == [21.0, 22.0, 23.0]
    assert rows[4]["tank_level_pct"] == 61.5
    types = field_types(stack, db, GS)
    sent = ("vapor_lel", "tank_pressure_kpa", "leak", "tank_temp_c", "tank_level_pct")
    assert {k: types.get(k) for k in sent} == dict.fromkeys(sent, "float")
    tag_keys = influx_query(stack, db, f'SHOW TAG KEYS FROM "{GS}"')["results"][0]["series"][0]["values"]
    assert {"site", "device", "street"} <= {t[0] for t in tag_keys}


def test_site_view_has_the_latest_values(deployment: Deployment) -> None:
    d, api, t0 = deployment.devices, deployment.api, now_ms() - 10_000
    d.send(GS, "GS-LT", "pump-1", {"vapor_lel": 2.0, "tank_level_pct": 80.0}, ts=t0)
    d.send(GS, "GS-LT", "pump-2", {"vapor_lel": 4.0}, ts=t0 + 1000)

    def latest() -> dict[str, Any]:
        found: dict[str, Any] = api.json("GET", "/api/v1/sites/GS-LT").get("latest", {})
        return found

    wait_until(lambda: latest().get("vapor_lel", {}).get("value") == 4.0, 15, "GS-LT's latest vapor_lel 4.0")
    site = api.json("GET", "/api/v1/sites/GS-LT")
    assert (site["id"], site["family"], site["street"], site["sector"]) == ("GS-LT", GS, "street_a", "trade")
    assert site["open_alerts"] == []
    vapor, level = site["latest"]["vapor_lel"], site["latest"]["tank_level_pct"]
    assert (vapor["device"], level["value"], level["device"]) == ("pump-2", 80.0, "pump-1")
    assert datetime.fromisoformat(vapor["time"]).timestamp() * 1000 == t0 + 1000


# (device, family in topic, site in topic, payload): each refused whole, for the reason in its device id;
# FUTURE in a payload becomes "6 minutes from now" when it is sent.
REFUSED: list[tuple[str, str, str, bytes]] = [
    ("rj-invalid-json", GS, "GS-RJ", b'{"values": {"vapor_lel": 1'),
    ("rj-unknown-site", GS, "GS-NOWHERE", b'{"values": {"vapor_lel": 1}}'),
    ("rj-family-mismatch", "underground", "GS-RJ", b'{"values": {"co_ppm": 1}}'),
    ("rj-unknown-metric", GS, "GS-RJ", b'{"values": {"occupancy": 5}}'),
    ("rj-non-numeric", GS, "GS-RJ", b'{"values": {"vapor_lel": "high"}}'),
    ("rj-out-of-range", GS, "GS-RJ", b'{"values": {"vapor_lel": 150}}'),
    ("rj-future-ts", GS, "GS-RJ", b'{"ts": FUTURE, "values": {"vapor_lel": 1}}'),
]


def test_bad_messages_are_rejected_counted_and_kept(stack: StackInfo, deployment: Deployment) -> None:
    d, db, serve = deployment.devices, deployment.name, deployment.serve
    before = serve.counter("reading", "reject")
    for device, family, site, payload in REFUSED:  # through mosquitto_pub: bytes exactly as given
        cli_publish(stack, d.topic(family, site, device), payload.replace(b"FUTURE", b"%d" % (now_ms() + 6 * 60_000)))
    # Partly valid: the unknown metric and the out-of-range value go, the two good values stay.
    mixed_ts = now_ms() - 1000
    d.send(GS, "GS-RJ", "rj-mixed", {"vapor_lel": 4.25, "bogus": 1, "tank_temp_c": 999, "tank_level_pct": 40},
           ts=mixed_ts)
    good_ts = d.send(GS, "GS-RJ", "rj-good", {"vapor_lel": 1.5})

    wait_until(lambda: len(stored(stack, db, GS, "GS-RJ")) >= 2, 20, "the valid GS-RJ readings in InfluxDB")
    rows = {r["device"]: r for r in stored(stack, db, GS, "GS-RJ")}
    assert set(rows) == {"rj-mixed", "rj-good"}, f"only valid values may be stored, got {rows}"
    mixed = rows["rj-mixed"]
    assert (mixed["time"], mixed["vapor_lel"], mixed["tank_level_pct"]) == (mixed_ts, 4.25, 40.0)
    assert mixed.get("tank_temp_c") is None and "bogus" not in mixed
    assert rows["rj-good"]["time"] == good_ts
    assert serve.alive(), f"serve died on bad input; log:\n{serve.log_tail()}"
    wait_until(lambda: serve.counter("reading", "reject") - before >= len(REFUSED) + 1, 10,
               "every refusal counted in /metrics")
    # Dead letters live under SAFEWATCH_DATA_DIR (contract section 1); each names its topic.
    kept = b"".join(p.read_bytes() for p in serve.data_dir.rglob("*") if p.is_file() and "spool" not in p.parts)
    missing = [device for device, *_ in REFUSED if device.encode() not in kept]
    assert not missing, f"no dead letter under {serve.data_dir} for {missing}"


def test_history_returns_the_published_values(deployment: Deployment) -> None:
    d, api = deployment.devices, deployment.api
    minute = now_ms() // 60_000 * 60_000
    values = [10.0, 12.0, 14.0, 16.0, 18.0]
    for k, v in enumerate(values):  # one reading in each of the last five whole minutes
        d.send(GS, "GS-HI", "gauge-1", {"tank_pressure_kpa": v}, ts=minute - (4 - k) * 60_000 + 5_000)
    start = datetime.fromtimestamp((minute - 5 * 60_000) / 1000, UTC).isoformat()
    end = datetime.fromtimestamp((minute + 60_000) / 1000, UTC).isoformat()
    params = {"site": "GS-HI", "metric": "tank_pressure_kpa", "start": start, "end": end, "every": "1m",
              "agg": "max"}

    def seen() -> list[float]:
        body = api.json("GET", "/api/v1/history", params=params)
        return [p["value"] for p in body["points"] if p["value"] is not None]

    wait_until(lambda: seen() == values, 20, f"history of GS-HI = {values}", interval=0.3)
    body = api.json("GET", "/api/v1/history", params=params)
    assert (body["site"], body["metric"], body["agg"], body["every"]) == ("GS-HI", "tank_pressure_kpa", "max", "1m")
    assert all(set(p) == {"time", "value"} for p in body["points"])
    assert all(datetime.fromisoformat(p["time"]).tzinfo is not None for p in body["points"])


@pytest.fixture(scope="module")
def rising_pressure(deployment: Deployment) -> int:
    """GS-TR's tank pressure over the last four minutes, +3 kPa a minute up to 112; returns the last ts."""
    t0 = now_ms() - 4 * 60_000
    for k in range(5):
        deployment.devices.send(GS, "GS-TR", "gauge-1", {"tank_pressure_kpa": 100.0 + 3 * k}, ts=t0 + k * 60_000)
    return t0 + 4 * 60_000


def test_trend_reports_slope_and_forecast(deployment: Deployment, rising_pressure: int) -> None:
    api = deployment.api
    params = {"site": "GS-TR", "metric": "tank_pressure_kpa", "window": "15m"}
    wait_until(lambda: api.json("GET", "/api/v1/trend", params=params)["last"] == 112.0, 20,
               "trend sees the last reading 112", interval=0.3)
    body = api.json("GET", "/api/v1/trend", params=params)
    assert {"slope_per_min", "last", "forecast"} <= set(body)
    assert body["slope_per_min"] == pytest.approx(3.0, rel=0.05)
    assert isinstance(body["forecast"], list)
    for f in body["forecast"]:
        assert {"rule", "level", "eta"} <= set(f)
        assert f["eta"] is None or datetime.fromisoformat(f["eta"]).tzinfo is not None
    # 250 (pressure-level red) is 138 kPa above the last reading: about 46 minutes at 3 kPa/min.
    red = [f for f in body["forecast"] if (f["rule"], f["level"]) == ("pressure-level", "red")]
    assert red, f"no forecast for pressure-level red in {body['forecast']}"
    eta_min = (datetime.fromisoformat(red[0]["eta"]).timestamp() * 1000 - rising_pressure) / 60_000
    assert eta_min == pytest.approx(46, abs=2)


def test_trend_rule_fires_on_a_forecast_crossing(deployment: Deployment, rising_pressure: int) -> None:
    """pressure-rising at GS-TR: the line reaches pressure-level red (250)
    within its 3h while the value is still below it; slope_above (30/min) alone would not fire."""
    api = deployment.api
    wait_until(lambda: api.only_alert("GS-TR", "pressure-rising") is not None, 20,
               "a pressure-rising alert at GS-TR", interval=0.3)
    alert = api.only_alert("GS-TR", "pressure-rising")
    assert alert is not None
    assert (alert["kind"], alert["metric"], alert["severity"], alert["state"]) == \
        ("trend", "tank_pressure_kpa", "yellow", "open")
