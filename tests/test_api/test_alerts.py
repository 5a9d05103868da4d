"""The alert book through the API: filters, paging, one alert with its events, ack and close,
and the registry's site view (latest values, open alerts)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from tests.support.api import ADMIN, Api, build_api
from tests.support.helpers import influx_write

T0 = (int(time.time()) - 3600) * 1000  # readings an hour ago, one second apart
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def book(api: Api) -> dict[str, str]:
    """Four alerts, oldest first: GS red (d1), UG yellow (acknowledged), CV yellow, GS blue (d2, closed)."""
    ids: dict[str, str] = {}
    for name, (site, metric, value, device) in {
        "gs_red": ("GS-001", "vapor_lel", 60.0, "d1"),
        "ug_yellow": ("UG-001", "o2_pct", 19.0, "d1"),
        "cv_yellow": ("CV-001", "occupancy", 850.0, "gate"),  # occupancy_ratio 0.85, derived by the engine
        "gs_blue": ("GS-001", "vapor_lel", 12.0, "d2"),
    }.items():
        api.reading(site, metric, value, device, ts_ms=T0 + len(ids) * 1000)
        ids[name] = api.state.list_alerts(limit=1)[0].id
    api.service.ack(ids["ug_yellow"], "civil_defence", "crew sent")
    api.service.close(ids["gs_blue"], "commerce", "sensor replaced")
    return ids


FILTERS = [
    ("", ["gs_blue", "cv_yellow", "ug_yellow", "gs_red"]),
    ("state=open", ["cv_yellow", "gs_red"]),
    ("state=acknowledged", ["ug_yellow"]),
    ("state=closed", ["gs_blue"]),
    ("state=resolved", []),
    ("site=GS-001", ["gs_blue", "gs_red"]),
    ("site=GS-001&state=open", ["gs_red"]),
    ("family=underground", ["ug_yellow"]),
    ("family=crowd_venue", ["cv_yellow"]),
    ("severity_at_least=yellow", ["cv_yellow", "ug_yellow", "gs_red"]),
    ("severity_at_least=red", ["gs_red"]),
    ("department=fire", ["gs_red"]),
    ("department=street_b", ["cv_yellow", "ug_yellow"]),
    ("department=police", []),
    (f"since={quote(datetime.fromtimestamp((T0 + 2000) / 1000, SHANGHAI).isoformat())}", ["gs_blue", "cv_yellow"]),
    (f"since={quote(datetime.fromtimestamp((T0 + 2001) / 1000, UTC).isoformat())}", ["gs_blue"]),
    ("limit=2", ["gs_blue", "cv_yellow"]),
    ("limit=2&before={cv_yellow}", ["ug_yellow", "gs_red"]),
    ("limit=1&before={ug_yellow}", ["gs_red"]),
    ("before={gs_red}", []),
    ("site=NOPE", []),
]


# Ids without the clock in them: every xdist worker must collect the same names.
FILTER_IDS = [q if not q.startswith("since=") else f"since-{i}" for i, (q, _) in enumerate(FILTERS)]


@pytest.mark.parametrize(("query", "expected"), FILTERS, ids=FILTER_IDS)
def test_alert_list_filters_and_paging(api: Api, book: dict[str, str], query: str, expected: list[str]):
    r = api.client.get(f"/api/v1/alerts?{query.format(**book)}", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert [a["id"] for a in r.json()] == [book[n] for n in expected]


def test_paging_walks_every_alert_once(api: Api, book: dict[str, str]):
    seen, before = [], ""
    while True:
        page = api.client.get(f"/api/v1/alerts?limit=1{before}", headers=ADMIN).json()
        if not page:
            break
        seen.append(page[0]["id"])
        before = f"&before={page[0]['id']}"
    assert seen == sorted(book.values(), key=int, reverse=True)


def test_one_alert_has_the_contract_shape_and_its_events(api: Api, book: dict[str, str]):
    r = api.client.get(f"/api/v1/alerts/{book['ug_yellow']}", headers=api.as_("street_b"))
    assert r.status_code == 200
    a = r.json()
    contract = {"id", "rule", "kind", "site", "family", "device", "metric", "severity", "state", "value",
                "threshold", "message", "started_at", "updated_at", "resolved_at", "closed_at", "departments",
                "events"}
    assert contract <= set(a)
    assert (a["rule"], a["kind"], a["site"], a["family"], a["device"], a["metric"]) == (
        "o2-low", "threshold", "UG-001", "underground", "d1", "o2_pct")
    assert (a["severity"], a["state"], a["value"], a["threshold"]) == ("yellow", "acknowledged", 19.0, 19.5)
    assert sorted(a["departments"]) == ["civil_defence", "street_b"]
    assert a["started_at"] == datetime.fromtimestamp((T0 + 1000) / 1000, SHANGHAI).isoformat(timespec="milliseconds")
    for key in ("started_at", "updated_at"):
        assert a[key].endswith("+08:00"), a[key]  # RFC 3339 in the district's zone
    assert a["resolved_at"] is None and a["closed_at"] is None
    events = [(e["type"], e["severity"], e["by"], e["note"]) for e in a["events"]]
    assert events == [("fired", "yellow", "engine", None), ("acknowledged", "yellow", "civil_defence", "crew sent")]
    assert all(e["at"].endswith("+08:00") for e in a["events"])
    listed = api.client.get("/api/v1/alerts?site=UG-001", headers=ADMIN).json()[0]
    assert listed["events"] == [] and {k: v for k, v in listed.items() if k != "events"} == {
        k: v for k, v in a.items() if k != "events"}


def test_ack_and_close_record_who_and_why(api: Api):
    alert = api.fire("GS-001", "vapor_lel", 30.0)  # orange: commerce, street_a, safety_bureau, fire
    r = api.client.post(f"/api/v1/alerts/{alert.id}/ack", json={"note": "team on site"},
                        headers=api.as_("street_a"))
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["events"][-1] | {"at": None, "id": None} == {
        "id": None, "type": "acknowledged", "at": None, "severity": "orange", "value": None, "by": "token:street_a",
        "note": "team on site"}
    r = api.client.post(f"/api/v1/alerts/{alert.id}/close", json={"note": "销账: valve replaced"}, headers=ADMIN)
    body = r.json()
    assert (r.status_code, body["state"], body["events"][-1]["by"]) == (200, "closed", "admin")
    assert body["events"][-1]["note"] == "销账: valve replaced" and body["closed_at"].endswith("+08:00")


def test_a_resolved_alert_can_be_closed_but_not_acknowledged(api: Api):
    alert = api.fire("UG-001", "o2_pct", 19.0)
    api.reading("UG-001", "o2_pct", 20.9)
    assert api.state.get_alert(alert.id).state.value == "resolved"  # type: ignore[union-attr]
    h = api.as_("civil_defence")
    assert api.client.post(f"/api/v1/alerts/{alert.id}/ack", headers=h).status_code == 409
    assert api.client.post(f"/api/v1/alerts/{alert.id}/close", headers=h).json()["state"] == "closed"


def test_site_view_has_latest_values_and_the_callers_open_alerts(api: Api):
    now = int(time.time() * 1000)
    api.reading("GS-001", "tank_level_pct", 40.0, "tank1", ts_ms=now - 2000)
    red = api.fire("GS-001", "vapor_lel", 60.0, "d1")
    blue = api.fire("GS-001", "vapor_lel", 11.0, "d2")  # blue: commerce and street_a only
    site = api.client.get("/api/v1/sites/GS-001", headers=api.as_("commerce")).json()
    assert {k: site[k] for k in ("id", "name", "family", "street", "sector", "street_office")} == {
        "id": "GS-001", "name": "某加油站", "family": "gas_station", "street": "a", "sector": "commerce",
        "street_office": "street_a"}
    assert site["latest"]["tank_level_pct"] == {
        "value": 40.0, "device": "tank1",
        "time": datetime.fromtimestamp((now - 2000) / 1000, SHANGHAI).isoformat(timespec="milliseconds")}
    assert site["latest"]["vapor_lel"]["value"] == 11.0 and site["latest"]["vapor_lel"]["device"] == "d2"
    assert [a["id"] for a in site["open_alerts"]] == [blue.id, red.id]
    fire_view = api.client.get("/api/v1/sites/GS-001", headers=api.as_("fire")).json()
    assert [a["id"] for a in fire_view["open_alerts"]] == [red.id]  # the blue one is not routed to fire
    api.service.close(red.id, "admin", None)
    again = api.client.get("/api/v1/sites/GS-001", headers=api.as_("commerce")).json()
    assert [a["id"] for a in again["open_alerts"]] == [blue.id]


def test_site_view_reads_latest_values_from_influxdb_after_a_restart(api: Api, stack, influx_db):
    now = int(time.time() * 1000)
    influx_write(stack, influx_db, [
        f"underground,site=UG-001,device=air1,street=b o2_pct=20.5,co_ppm=3 {now - 60_000}",
        f"underground,site=UG-001,device=air2,street=b o2_pct=20.1 {now - 30_000}",
    ])
    fresh = build_api(api.ctx.district, api.state, api.ctx.influx)  # an engine that has seen nothing
    try:
        latest = fresh.client.get("/api/v1/sites/UG-001", headers=ADMIN).json()["latest"]
    finally:
        fresh.service.stop()
    assert {m: (v["value"], v["device"]) for m, v in latest.items()} == {
        "o2_pct": (20.1, "air2"), "co_ppm": (3.0, "air1")}


def test_registry_lists_departments_and_filters_sites(api: Api):
    deps = api.client.get("/api/v1/departments", headers=api.as_("fire")).json()
    assert deps[0] == {"id": "safety_bureau", "name": "区安监局", "kind": "comprehensive"}
    assert len(deps) == 7
    ids = lambda q: [s["id"] for s in api.client.get(f"/api/v1/sites{q}", headers=ADMIN).json()]  # noqa: E731
    assert ids("") == ["GS-001", "CV-001", "UG-001"]
    assert ids("?family=underground") == ["UG-001"]
    assert ids("?street=b") == ["CV-001", "UG-001"]
    assert ids("?street=b&family=gas_station") == []
    assert ids("?street=zzz") == []
    cv = api.client.get("/api/v1/sites", params={"family": "crowd_venue"}, headers=ADMIN).json()[0]
    assert (cv["capacity"], cv["area_m2"]) == (1000, 500.0)
