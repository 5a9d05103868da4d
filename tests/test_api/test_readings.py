"""/history and /trend over HTTP against the session's InfluxDB; readings written with line protocol."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from store.influx import InfluxClient
from tests.support.api import ADMIN, Api
from tests.support.helpers import influx_write

MINUTE = 60_000
SHANGHAI = ZoneInfo("Asia/Shanghai")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, SHANGHAI).isoformat(timespec="milliseconds")


@pytest.fixture
def minutes(api: Api, stack, influx_db) -> int:
    """GS-001 vapor_lel over five minutes from ``base``: d1 and d2 in minute 0, none in 1, d1 in 2-4."""
    base = (int(time.time() * 1000) - 30 * MINUTE) // MINUTE * MINUTE
    points = [(0, "d1", 1.0), (10, "d2", 5.0), (50, "d1", 3.0), (120, "d1", 7.5), (200, "d1", 2.0), (230, "d1", 4.0)]
    influx_write(stack, influx_db, [
        f"gas_station,site=GS-001,device={dev},street=a vapor_lel={v} {base + s * 1000}" for s, dev, v in points])
    return base


@pytest.mark.parametrize(("agg", "device", "values"), [
    ("mean", None, [3.0, None, 7.5, 3.0, None]),
    ("max", None, [5.0, None, 7.5, 4.0, None]),
    ("min", None, [1.0, None, 7.5, 2.0, None]),
    ("last", None, [3.0, None, 7.5, 4.0, None]),
    ("count", None, [3, None, 1, 2, None]),
    ("p95", None, [5.0, None, 7.5, 4.0, None]),
    ("mean", "d1", [2.0, None, 7.5, 3.0, None]),
    ("count", "d2", [1, None, None, None, None]),
])
def test_history_answers_the_contract_shape(api: Api, minutes: int, agg, device, values):
    params = {"site": "GS-001", "metric": "vapor_lel", "start": iso(minutes), "end": iso(minutes + 5 * MINUTE),
              "every": "1m", "agg": agg} | ({"device": device} if device else {})
    r = api.client.get("/api/v1/history", params=params, headers=api.as_("commerce"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("site", "metric", "agg", "every", "source")} == {
        "site": "GS-001", "metric": "vapor_lel", "agg": agg, "every": "1m", "source": "raw"}
    assert (body["start"], body["end"]) == (local(minutes), local(minutes + 5 * MINUTE))
    assert body["points"] == [{"time": local(minutes + i * MINUTE), "value": v} for i, v in enumerate(values)]


def test_history_defaults_to_the_last_hour_per_minute(api: Api, minutes: int):
    body = api.client.get("/api/v1/history?site=GS-001&metric=vapor_lel", headers=ADMIN).json()
    assert body["every"] == "1m" and body["agg"] == "mean"
    assert 60 <= len(body["points"]) <= 61
    start, end = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
    assert (end - start).total_seconds() == 3600 and abs(end.timestamp() - time.time()) < 5
    got = {p["time"]: p["value"] for p in body["points"] if p["value"] is not None}
    assert got == {local(minutes): 3.0, local(minutes + 2 * MINUTE): 7.5, local(minutes + 3 * MINUTE): 3.0}


def test_history_of_a_derived_metric(api: Api, stack, influx_db):
    t = (int(time.time() * 1000) - 10 * MINUTE) // MINUTE * MINUTE
    influx_write(stack, influx_db, [f"crowd_venue,site=CV-001,device=gate,street=b occupancy=750 {t + 5}"])
    r = api.client.get("/api/v1/history", headers=api.as_("culture"), params={
        "site": "CV-001", "metric": "occupancy_ratio", "start": iso(t), "end": iso(t + MINUTE), "agg": "max"})
    assert r.json()["points"] == [{"time": local(t), "value": 0.75}]


def rising(api: Api, stack, influx_db, site: str, family: str, metric: str, street: str,
           start_value: float, per_min: float, n: int = 10) -> int:
    """n readings one minute apart ending now-ish, on an exact line; returns the last one's time."""
    last = int(time.time() * 1000) - 5000
    influx_write(stack, influx_db, [
        f"{family},site={site},device=s1,street={street} {metric}={start_value + per_min * i} "
        f"{last - (n - 1 - i) * MINUTE}" for i in range(n)])
    return last


def test_trend_forecasts_levels_not_yet_reached(api: Api, stack, influx_db):
    last = rising(api, stack, influx_db, "GS-001", "gas_station", "vapor_lel", "a", 5.0, 1.5)  # ends at 18.5
    r = api.client.get("/api/v1/trend?site=GS-001&metric=vapor_lel", headers=api.as_("fire"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["slope_per_min"] == pytest.approx(1.5) and body["last"] == pytest.approx(18.5)
    assert (body["points"], body["window"], body["last_time"]) == (10, "15m", local(last))
    # blue (10) is already passed; the line reaches yellow 20, orange 25 and red 50 later
    want = [("vapor-level", level, bound, local(last + round((bound - 18.5) / 1.5 * MINUTE)))
            for level, bound in (("yellow", 20.0), ("orange", 25.0), ("red", 50.0))]
    assert [(f["rule"], f["level"], f["threshold"], f["eta"]) for f in body["forecast"]] == want


def test_trend_of_a_falling_metric_and_a_short_window(api: Api, stack, influx_db):
    last = rising(api, stack, influx_db, "UG-001", "underground", "o2_pct", "b", 20.9, -0.1)  # ends at 20.0
    body = api.client.get("/api/v1/trend?site=UG-001&metric=o2_pct&window=5m", headers=ADMIN).json()
    assert body["points"] == 5 and body["slope_per_min"] == pytest.approx(-0.1)
    etas = {f["level"]: f["eta"] for f in body["forecast"]}
    assert etas == {"yellow": local(last + round(0.5 / 0.1 * MINUTE)), "red": local(last + round(2 / 0.1 * MINUTE))}


def test_a_flat_or_receding_line_never_gets_there(api: Api, stack, influx_db):
    rising(api, stack, influx_db, "GS-001", "gas_station", "vapor_lel", "a", 30.0, -0.5)  # orange passed, falling
    body = api.client.get("/api/v1/trend?site=GS-001&metric=vapor_lel", headers=ADMIN).json()
    assert body["slope_per_min"] == pytest.approx(-0.5)
    assert [(f["level"], f["eta"]) for f in body["forecast"]] == [("red", None)]


def test_trend_without_readings(api: Api):
    body = api.client.get("/api/v1/trend?site=CV-001&metric=occupancy_ratio", headers=ADMIN).json()
    assert body == {"site": "CV-001", "metric": "occupancy_ratio", "window": "15m", "points": 0,
                    "slope_per_min": None, "last": None, "last_time": None, "forecast": []}


def test_influxdb_unreachable_answers_503_with_detail(api: Api):
    dead = InfluxClient("http://127.0.0.1:9", "nope", None, timeout=1.0)
    api.app.state.history.client = dead
    try:
        r = api.client.get("/api/v1/history?site=GS-001&metric=vapor_lel", headers=ADMIN)
    finally:
        dead.close()
    assert r.status_code == 503 and r.json()["detail"].startswith("readings unavailable: InfluxDB")
