"""Alerts end to end: a crossing → the book (API) → webhooks and MQTT alert topics, with the
lifecycle, escalation and department isolation of contract sections 3, 5 and 6."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest

from service.stack import StackInfo
from tests.e2e.conftest import Deployment, secret_of
from tests.support.e2e.clients import EventStream, now_ms, wait_equal
from tests.support.e2e.district import DEPARTMENTS, ESCALATE_AFTER_S, STREET, routed
from tests.support.e2e.shapes import check_alert, check_webhook, event_types
from tests.support.helpers import influx_rows, wait_until

GS = "gas_station"
SWEEP_SLACK_S = 5.0 + 8.0  # scheduler period (unspecified; 5 s here) plus a busy machine's delay


def test_alert_lifecycle_reaches_api_webhooks_and_mqtt(deployment: Deployment) -> None:
    d, api, hooks = deployment.devices, deployment.api, deployment.hooks
    site, rule = "GS-FLOW", "vapor-level"

    d.send(GS, site, "det-1", {"vapor_lel": 12.0})  # above blue (10)
    a = api.wait_alert(site, rule, lambda a: a["state"] == "open", "fired")
    check_alert(a)
    alert_id = a["id"]
    assert (a["kind"], a["family"], a["device"], a["metric"], a["severity"]) == \
        ("threshold", GS, "det-1", "vapor_lel", "blue")
    assert (a["value"], a["threshold"]) == (12.0, 10.0)
    assert set(a["departments"]) == routed(site, "blue") and event_types(a) == ["fired"]
    listed = api.alerts(state="open", site=site)
    assert [x["id"] for x in listed] == [alert_id]
    check_alert(listed[0], with_events=False)

    d.send(GS, site, "det-1", {"vapor_lel": 27.0})  # above orange (25): same alert, higher severity
    a = api.wait_alert(site, rule, lambda a: a["severity"] == "orange", "orange")
    assert a["id"] == alert_id and event_types(a) == ["fired", "severity_changed"]
    assert set(a["departments"]) == routed(site, "orange")  # guard joins at orange

    acked = api.json("POST", f"/api/v1/alerts/{alert_id}/ack", json={"note": "crew on the way"})
    assert acked["state"] == "acknowledged" and acked["events"][-1]["note"] == "crew on the way"
    assert api.request("POST", f"/api/v1/alerts/{alert_id}/ack", json={"note": "again"}).status_code == 409

    d.send(GS, site, "det-1", {"vapor_lel": 5.0})  # below blue - hysteresis (8)
    a = api.wait_alert(site, rule, lambda a: a["state"] == "resolved", "resolved")
    assert a["resolved_at"] is not None

    d.send(GS, site, "det-1", {"vapor_lel": 13.0})  # back before anyone closed it
    a = api.wait_alert(site, rule, lambda a: a["state"] == "open", "reopened")
    assert a["id"] == alert_id and event_types(a)[-1] == "reopened"

    closed = api.json("POST", f"/api/v1/alerts/{alert_id}/close", json={"note": "rectified"})
    assert closed["state"] == "closed" and closed["closed_at"] is not None
    expected = ["fired", "severity_changed", "acknowledged", "resolved", "reopened", "closed"]
    assert event_types(api.alert(alert_id)) == expected

    # Webhooks: each routed department, every event once, in order, signed with its secret.
    for dep in sorted(routed(site, "orange")):
        want = expected if dep in routed(site, "blue") else expected[1:]
        path = f"/hook/{dep}"
        wait_equal(lambda p=path: hooks.types(p, alert_id), want, 20, f"{dep}'s webhooks")  # type: ignore[misc]
        for delivery in hooks.deliveries(path):
            if delivery.json["alert"]["id"] == alert_id:
                check_webhook(delivery, dep, secret_of(dep))
        ats = [datetime.fromisoformat(e["alert"]["updated_at"]) for e in hooks.events(path, alert_id)]
        assert ats == sorted(ats), f"{dep}: events out of order"
    for dep in set(DEPARTMENTS) - routed(site, "orange"):
        assert hooks.types(f"/hook/{dep}", alert_id) == [], f"{dep} is not routed but got webhooks"

    # MQTT: the same events on {district}/alerts/{department}/{severity}, QoS 1.
    def on_topic(dep: str) -> list[tuple[str, dict[str, Any]]]:
        prefix = f"{deployment.name}/alerts/{dep}/"
        return [(t, b) for t, b in deployment.topics.received(alert_id) if t.startswith(prefix)]

    wait_equal(lambda: [b["type"] for _, b in on_topic("trade")], expected, 10, "trade's MQTT alert topic events")
    for topic, body in on_topic("trade"):
        assert topic == f"{deployment.name}/alerts/trade/{body['alert']['severity']}"
        assert body["department"] == "trade"
    assert [b["type"] for _, b in on_topic("guard")] == expected[1:]
    assert on_topic("civil") == [] and on_topic("ops") == []


# (site, family, values, rule, metric, severity)
CROSSINGS = [
    ("GS-X1", GS, {"vapor_lel": 30.0}, "vapor-level", "vapor_lel", "orange"),
    # derived by the engine: 900 persons / capacity 1000
    ("CV-1", "crowd_venue", {"occupancy": 900.0}, "crowd-ratio", "occupancy_ratio", "yellow"),
    ("UG-X1", "underground", {"co_ppm": 60.0}, "co-level", "co_ppm", "orange"),
]


@pytest.mark.parametrize(("site", "family", "values", "rule", "metric", "severity"), CROSSINGS,
                         ids=[c[0] for c in CROSSINGS])
def test_crossing_raises_an_alert_routed_to_its_departments(
        deployment: Deployment, site: str, family: str, values: dict[str, float], rule: str, metric: str,
        severity: str) -> None:
    api, hooks = deployment.api, deployment.hooks
    deployment.devices.send(family, site, "x-1", values)
    a = api.wait_alert(site, rule, lambda a: a["state"] == "open", "fired")
    assert (a["family"], a["metric"], a["severity"], a["device"]) == (family, metric, severity, "x-1")
    assert set(a["departments"]) == routed(site, severity)
    for dep in routed(site, severity):
        wait_equal(lambda p=f"/hook/{dep}": hooks.types(p, a["id"]), ["fired"], 15,  # type: ignore[misc]
                   f"webhooks to {dep}")


def test_buffered_upload_is_evaluated_in_order(deployment: Deployment) -> None:
    """A device back from an outage uploads an array: the crossing inside it fires, the later
    normal value resolves, in the readings' own time order."""
    d, api, site, t0 = deployment.devices, deployment.api, "GS-ARR", now_ms() - 20_000
    upload = [{"ts": t0 + 1000 * i, "values": {"vapor_lel": v}} for i, v in enumerate([3.0, 30.0, 31.0, 2.0])]
    d.raw(d.topic(GS, site, "det-1"), json.dumps(upload))
    a = api.wait_alert(site, "vapor-level", lambda a: a["state"] == "resolved", "fired and resolved")
    assert event_types(a) == ["fired", "resolved"]
    assert [datetime.fromisoformat(e["at"]).timestamp() * 1000 for e in a["events"]] == [t0 + 1000, t0 + 3000]


# subscription path → (filters, the alerts of FILTER_ALERTS it must get)
FILTERED_SUBS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "/filter/orange-up": ({"min_severity": "orange"}, {"GS-F1"}),
    "/filter/crowds": ({"families": ["crowd_venue"]}, {"CV-2"}),
    "/filter/one-site": ({"sites": ["GS-F1"]}, {"GS-F1"}),
    "/filter/street": ({"streets": [STREET]}, {"GS-F1", "CV-2"}),
}
# site → (family, values): GS-F1 goes orange, CV-2 yellow (occupancy ratio 0.85); both routed to trade
FILTER_ALERTS = {"GS-F1": (GS, {"vapor_lel": 30.0}), "CV-2": ("crowd_venue", {"occupancy": 850.0})}


def test_subscription_filters_choose_what_a_receiver_gets(deployment: Deployment) -> None:
    api, hooks = deployment.api, deployment.hooks
    for path, (filters, _) in FILTERED_SUBS.items():
        api.json("POST", "/api/v1/subscriptions", expect=201, json={
            "channel": "webhook", "url": hooks.url(path), "secret": "s", "department": "trade", **filters})
    ids = {}
    for site, (family, values) in FILTER_ALERTS.items():
        deployment.devices.send(family, site, "x-1", values)
        ids[site] = api.wait_alert(site, "vapor-level" if family == GS else "crowd-ratio",
                                   lambda a: a["state"] == "open", "fired")["id"]
    # the unfiltered subscription of trade gets both; by then the filtered ones have had their chance
    for site in FILTER_ALERTS:
        wait_equal(lambda s=site: hooks.types("/hook/trade", ids[s]), ["fired"], 15,  # type: ignore[misc]
                   f"trade's unfiltered webhook for {site}")
    time.sleep(1.0)
    for path, (_, wanted) in FILTERED_SUBS.items():
        got = {site for site, alert_id in ids.items() if hooks.types(path, alert_id)}
        assert got == wanted, f"{path}: got alerts of {sorted(got)}, want {sorted(wanted)}"


def test_alert_events_are_written_to_influxdb(stack: StackInfo, deployment: Deployment) -> None:
    api, site = deployment.api, "GS-EV"
    deployment.devices.send(GS, site, "det-1", {"vapor_lel": 21.0})  # yellow
    a = api.wait_alert(site, "vapor-level", lambda a: a["state"] == "open", "fired")
    api.json("POST", f"/api/v1/alerts/{a['id']}/close", json={"note": "checked"})
    query = f"SELECT * FROM \"alert_event\" WHERE \"site\" = '{site}'"
    wait_until(lambda: len(influx_rows(stack, deployment.name, query)) == 2, 15, "2 alert_event points")
    rows = sorted(influx_rows(stack, deployment.name, query), key=lambda r: r["time"])
    assert [r["event"] for r in rows] == ["fired", "closed"]
    for r in rows:
        assert (r["site"], r["family"], r["metric"], r["rule"], r["severity"], r["alert_id"]) == \
            (site, GS, "vapor_lel", "vapor-level", "yellow", a["id"])
    assert rows[0]["value"] == 21.0


def test_silence_holds_back_only_the_silencing_departments_notifications(deployment: Deployment) -> None:
    api, hooks, site = deployment.api, deployment.hooks, "GS-SIL"
    trade = api.token_for("trade")
    until = datetime.fromtimestamp(time.time() + 600).astimezone().isoformat()
    api.json("POST", "/api/v1/silences", trade, expect=201,
             json={"site": site, "metric": "vapor_lel", "until": until, "reason": "valve maintenance"})
    deployment.devices.send(GS, site, "det-1", {"vapor_lel": 12.0})
    a = api.wait_alert(site, "vapor-level", lambda a: a["state"] == "open", "recorded despite the silence")
    assert "trade" in a["departments"]
    wait_until(lambda: hooks.types("/hook/office_a", a["id"]) == ["fired"], 15, "office_a still notified")
    time.sleep(2.0)  # trade's row, if any, went out together with office_a's
    assert hooks.types("/hook/trade", a["id"]) == [], "trade silenced the site but was notified"


def test_stream_sends_the_callers_alert_events(deployment: Deployment) -> None:
    api, site = deployment.api, "GS-SSE"
    trade, civil = EventStream(api, api.token_for("trade")), EventStream(api, api.token_for("civil"))
    try:
        for s in (trade, civil):
            assert s.open.wait(10) and s.status == 200
        time.sleep(0.5)  # the response headers come before the subscription is surely taken
        deployment.devices.send(GS, site, "det-1", {"vapor_lel": 11.0})
        a = api.wait_alert(site, "vapor-level", lambda a: a["state"] == "open", "fired")
        wait_until(lambda: any(b["alert"]["id"] == a["id"] for b in trade.bodies), 10, "trade's stream has the alert")
        mine = [b for b in trade.bodies if b["alert"]["id"] == a["id"]]
        assert [(b["type"], b["department"]) for b in mine] == [("fired", "trade")]
        check_alert(mine[0]["alert"], with_events=False)
        time.sleep(0.5)
        assert not [b for b in civil.bodies if b["alert"]["id"] == a["id"]], "civil's stream shows trade's alert"
    finally:
        trade.close()
        civil.close()


def test_unacknowledged_alert_escalates(deployment: Deployment) -> None:
    api, hooks, site = deployment.api, deployment.hooks, "GS-ESC"
    deployment.devices.send(GS, site, "det-1", {"vapor_lel": 60.0})  # red
    a = api.wait_alert(site, "vapor-level", lambda a: a["state"] == "open", "fired")
    assert "ops" not in a["departments"]
    a = api.wait_alert(site, "vapor-level", lambda a: "escalated" in event_types(a), "escalated",
                   timeout=ESCALATE_AFTER_S + SWEEP_SLACK_S)
    assert "ops" in a["departments"] and a["state"] == "open"
    escalated = next(e for e in a["events"] if e["type"] == "escalated")
    waited = datetime.fromisoformat(escalated["at"]) - datetime.fromisoformat(a["started_at"])
    assert waited.total_seconds() >= ESCALATE_AFTER_S - 0.5, f"escalated after only {waited}"
    wait_until(lambda: "escalated" in hooks.types("/hook/ops", a["id"]), 15, "escalated webhook to ops")
    api.json("POST", f"/api/v1/alerts/{a['id']}/close", json={"note": "done"})


@pytest.fixture(scope="module")
def token_case(deployment: Deployment) -> dict[str, str]:
    """An open alert at GS-TOK (routed to trade and office_a), and tokens for trade, office_a, civil."""
    deployment.devices.send(GS, "GS-TOK", "det-1", {"vapor_lel": 15.0})
    a = deployment.api.wait_alert("GS-TOK", "vapor-level", lambda a: a["state"] == "open", "fired")
    return {"id": a["id"]} | {dep: deployment.api.token_for(dep) for dep in ("trade", "office_a", "civil")}


# (caller, method, path, status): "{id}" is the GS-TOK alert; a caller not in token_case is a bad token
ACCESS = [
    ("trade", "GET", "/api/v1/alerts/{id}", 200),
    ("office_a", "GET", "/api/v1/alerts/{id}", 200),
    ("civil", "GET", "/api/v1/alerts/{id}", 404),
    ("civil", "POST", "/api/v1/alerts/{id}/ack", 403),
    ("civil", "POST", "/api/v1/alerts/{id}/close", 403),
    ("trade", "POST", "/api/v1/tokens", 403),
    (None, "GET", "/api/v1/alerts", 401),
    (None, "GET", "/api/v1/alerts/{id}", 401),
    ("not-a-token", "GET", "/api/v1/alerts", 401),
]


@pytest.mark.parametrize(("caller", "method", "path", "status"), ACCESS)
def test_department_tokens_see_only_their_alerts(deployment: Deployment, token_case: dict[str, str],
                                                 caller: str | None, method: str, path: str, status: int) -> None:
    token = None if caller is None else token_case.get(caller, caller)
    body = {"department": "trade"} if path.endswith("tokens") else {"note": "n"}
    resp = deployment.api.request(method, path.format(id=token_case["id"]), token,
                                  json=body if method == "POST" else None)
    assert resp.status_code == status, resp.text
    assert isinstance(resp.json().get("detail"), str) or status == 200
    if status == 401:
        assert resp.headers.get("www-authenticate", "").startswith("Bearer"), resp.headers


@pytest.mark.parametrize(("department", "sees"), [("trade", True), ("office_a", True), ("civil", False)])
def test_department_alert_list_is_scoped(deployment: Deployment, token_case: dict[str, str], department: str,
                                         sees: bool) -> None:
    listed = {a["id"] for a in deployment.api.alerts(token_case[department])}
    assert (token_case["id"] in listed) is sees
    assert all(department in a["departments"] for a in deployment.api.alerts(token_case[department]))


def test_routed_department_can_acknowledge(deployment: Deployment, token_case: dict[str, str]) -> None:
    api, alert_id = deployment.api, token_case["id"]
    acked = api.json("POST", f"/api/v1/alerts/{alert_id}/ack", token_case["trade"], json={"note": "seen"})
    assert acked["state"] == "acknowledged" and acked["events"][-1]["type"] == "acknowledged"
    time.sleep(0.1)
    assert api.request("POST", f"/api/v1/alerts/{alert_id}/ack", token_case["trade"], json={}).status_code == 409
