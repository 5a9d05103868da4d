"""Subscriptions and silences: what is stored, who sees it, and silences that run out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.api import ADMIN, Api
from tests.support.helpers import wait_until


def test_a_subscription_round_trip(api: Api):
    h = api.as_("culture")
    body = {"channel": "webhook", "url": "https://hooks.example.org/culture", "secret": "s3cret",
            "min_severity": "yellow", "families": ["crowd_venue"], "streets": ["b"], "sites": ["CV-001"]}
    r = api.client.post("/api/v1/subscriptions", json=body, headers=h)
    assert r.status_code == 201, r.text
    sub = r.json()
    assert sub["department"] == "culture" and sub["has_secret"] is True and "secret" not in sub
    assert {k: sub[k] for k in ("channel", "url", "min_severity", "families", "streets", "sites")} == {
        k: v for k, v in body.items() if k != "secret"}
    assert sub["created_at"].endswith("+08:00")
    assert api.client.get(f"/api/v1/subscriptions/{sub['id']}", headers=h).json() == sub
    assert api.client.get("/api/v1/subscriptions", headers=h).json() == [sub]
    stored = api.state.get_subscription(sub["id"])
    assert stored is not None and stored.secret == "s3cret"  # kept for signing, never shown again
    assert api.client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=h).status_code == 204
    assert api.client.get("/api/v1/subscriptions", headers=h).json() == []
    assert api.client.delete(f"/api/v1/subscriptions/{sub['id']}", headers=h).status_code == 404


def test_the_admin_subscribes_a_named_department_and_filters_the_list(api: Api):
    for dep in ("fire", "commerce"):
        r = api.client.post("/api/v1/subscriptions", json={"url": f"http://127.0.0.1:9/{dep}", "department": dep},
                            headers=ADMIN)
        assert r.status_code == 201 and r.json()["department"] == dep and r.json()["has_secret"] is False
    assert [s["department"] for s in api.client.get("/api/v1/subscriptions", headers=ADMIN).json()] == [
        "fire", "commerce"]
    only = api.client.get("/api/v1/subscriptions?department=commerce", headers=ADMIN).json()
    assert [s["department"] for s in only] == ["commerce"]
    topic = f"{api.ctx.district.name}/alerts/ops/fire"  # the admin's topics: under {district}/alerts/
    mqtt = api.client.post("/api/v1/subscriptions", json={"channel": "mqtt", "url": topic,
                                                           "department": "fire"}, headers=ADMIN)
    assert mqtt.status_code == 201 and mqtt.json()["channel"] == "mqtt"


def test_silences_are_listed_until_they_run_out(api: Api):
    h = api.as_("commerce")
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    r = api.client.post("/api/v1/silences", headers=h, json={
        "site": "GS-001", "metric": "vapor_lel", "until": soon.isoformat(), "reason": "calibration"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert (s["site"], s["metric"], s["reason"], s["department"], s["created_by"]) == (
        "GS-001", "vapor_lel", "calibration", "commerce", "token:commerce")
    assert datetime.fromisoformat(s["until"]) == soon.replace(microsecond=soon.microsecond // 1000 * 1000)
    assert s["until"].endswith("+08:00")
    later = api.client.post("/api/v1/silences", headers=ADMIN, json={
        "site": "GS-001", "until": (datetime.now(UTC) + timedelta(hours=2)).isoformat(), "reason": "works"})
    assert later.json()["department"] is None and later.json()["created_by"] == "admin"
    listed = lambda: [x["id"] for x in api.client.get("/api/v1/silences", headers=h).json()]  # noqa: E731
    assert listed() == [s["id"], later.json()["id"]]
    wait_until(lambda: listed() == [later.json()["id"]], timeout=5, what="the silence ran out")
    assert api.client.delete(f"/api/v1/silences/{s['id']}", headers=h).status_code == 404  # already ended


def test_a_silence_holds_notifications_but_not_the_record(api: Api):
    api.client.post("/api/v1/silences", headers=api.as_("commerce"), json={
        "site": "GS-001", "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "reason": "drill"})
    alert = api.fire("GS-001", "vapor_lel", 60.0)
    assert api.client.get(f"/api/v1/alerts/{alert.id}", headers=api.as_("commerce")).status_code == 200
    assert api.state.silence_for("commerce", "GS-001", "vapor_lel") is not None
    assert api.state.silence_for("fire", "GS-001", "vapor_lel") is None
