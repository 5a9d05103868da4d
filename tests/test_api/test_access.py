"""Who may do what: 401/403/404/409/422 paths and department isolation for every endpoint."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.api import ADMIN, DEPARTMENTS, Api

GS_DEPTS = {"commerce", "street_a", "safety_bureau", "fire"}  # a red GS-001 alert reaches these
UG_DEPTS = {"civil_defence", "street_b"}  # a yellow UG-001 alert reaches these
FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()


@dataclass
class World:
    """Two alerts, two subscriptions and two silences, made through the API by their owners."""

    gs_alert: str
    ug_alert: str
    commerce_sub: str
    culture_sub: str
    commerce_silence: str
    global_silence: str


def make_world(api: Api) -> World:
    c = api.client
    gs = api.fire("GS-001", "vapor_lel", 60.0).id
    ug = api.fire("UG-001", "o2_pct", 19.0).id
    assert set(api.state.get_alert(gs).departments) == GS_DEPTS  # type: ignore[union-attr]
    assert set(api.state.get_alert(ug).departments) == UG_DEPTS  # type: ignore[union-attr]
    sub = {"channel": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s"}
    cs = c.post("/api/v1/subscriptions", json=sub, headers=api.as_("commerce")).json()["id"]
    us = c.post("/api/v1/subscriptions", json=sub, headers=api.as_("culture")).json()["id"]
    silence = {"site": "GS-001", "until": FUTURE, "reason": "maintenance"}
    ms = c.post("/api/v1/silences", json=silence, headers=api.as_("commerce")).json()["id"]
    gl = c.post("/api/v1/silences", json=silence | {"site": "UG-001"}, headers=ADMIN).json()["id"]
    return World(gs, ug, cs, us, ms, gl)


# endpoint → (method, path, body, departments allowed, status when allowed, status otherwise).
# Rows run in this order for one department on a fresh world; writes come after the reads.
TABLE: list[tuple[str, str, str, dict[str, object] | None, set[str] | None, int, int]] = [
    ("list sites", "GET", "/api/v1/sites", None, None, 200, 200),
    ("list departments", "GET", "/api/v1/departments", None, None, 200, 200),
    ("GS site", "GET", "/api/v1/sites/GS-001", None, GS_DEPTS, 200, 404),
    ("UG site", "GET", "/api/v1/sites/UG-001", None, UG_DEPTS | {"safety_bureau"}, 200, 404),
    ("GS history", "GET", "/api/v1/history?site=GS-001&metric=vapor_lel", None, GS_DEPTS, 200, 404),
    ("UG trend", "GET", "/api/v1/trend?site=UG-001&metric=o2_pct", None, UG_DEPTS | {"safety_bureau"}, 200, 404),
    ("GS alert", "GET", "/api/v1/alerts/{gs_alert}", None, GS_DEPTS, 200, 404),
    ("UG alert", "GET", "/api/v1/alerts/{ug_alert}", None, UG_DEPTS, 200, 404),
    ("list alerts", "GET", "/api/v1/alerts", None, None, 200, 200),
    ("list subscriptions", "GET", "/api/v1/subscriptions", None, None, 200, 200),
    ("list silences", "GET", "/api/v1/silences", None, None, 200, 200),
    ("commerce sub", "GET", "/api/v1/subscriptions/{commerce_sub}", None, {"commerce"}, 200, 404),
    ("ack GS alert", "POST", "/api/v1/alerts/{gs_alert}/ack", {"note": "on it"}, GS_DEPTS, 200, 403),
    ("close UG alert", "POST", "/api/v1/alerts/{ug_alert}/close", {"note": "fixed"}, UG_DEPTS, 200, 403),
    ("own sub", "POST", "/api/v1/subscriptions", {"url": "https://example.org/h"}, None, 201, 201),
    ("sub for fire", "POST", "/api/v1/subscriptions", {"url": "https://example.org/h", "department": "fire"},
     {"fire"}, 201, 403),
    ("delete culture sub", "DELETE", "/api/v1/subscriptions/{culture_sub}", None, {"culture"}, 204, 403),
    ("silence GS", "POST", "/api/v1/silences", {"site": "GS-001", "until": FUTURE}, GS_DEPTS, 201, 403),
    ("end commerce silence", "DELETE", "/api/v1/silences/{commerce_silence}", None, {"commerce"}, 204, 403),
    ("end global silence", "DELETE", "/api/v1/silences/{global_silence}", None, set(), 204, 403),
    ("inspect GS", "POST", "/api/v1/hazards", {"site": "GS-001", "title": "blocked exit"}, GS_DEPTS, 201, 404),
    ("inspect UG", "POST", "/api/v1/hazards", {"site": "UG-001", "title": "blocked exit"},
     UG_DEPTS | {"safety_bureau"}, 201, 404),
    ("issue token", "POST", "/api/v1/tokens", {"department": "fire"}, set(), 201, 403),
    ("revoke tokens", "DELETE", "/api/v1/tokens/fire", None, set(), 200, 403),
    ("revoke a token", "POST", "/api/v1/tokens/revoke", {"token": "nope"}, set(), 404, 403),
]
# The admin passes every row with the allowed status, except: a subscription must name its department.
ADMIN_STATUS = {"own sub": 422}
# Refused rows about something the department cannot even see answer 404 instead: the district-wide
# silence is of UG-001, which only these see.
UNSEEN = {"end global silence": UG_DEPTS | {"safety_bureau"}}


def expected_status(who: str, name: str, allowed: set[str] | None, ok: int, denied: int) -> int:
    if who == "admin":
        return ADMIN_STATUS.get(name, ok)
    if name in UNSEEN and who not in UNSEEN[name]:
        return 404
    return ok if allowed is None or who in allowed else denied


@pytest.mark.parametrize("who", ["admin", *DEPARTMENTS])
def test_department_isolation_table(api: Api, who: str):
    world = make_world(api)
    headers = api.as_(who)
    wrong = []
    for name, method, path, body, allowed, ok, denied in TABLE:
        expected = expected_status(who, name, allowed, ok, denied)
        r = api.client.request(method, path.format(**vars(world)), json=body, headers=headers)
        if r.status_code != expected:
            wrong.append(f"{who} × {name}: {r.status_code} (expected {expected}) {r.text[:200]}")
        if r.status_code >= 400:
            assert isinstance(r.json()["detail"], str)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", ["admin", *DEPARTMENTS])
def test_lists_show_only_what_is_routed_to_the_caller(api: Api, who: str):
    world = make_world(api)
    headers = api.as_(who)
    alerts = {a["id"] for a in api.client.get("/api/v1/alerts", headers=headers).json()}
    want = {a for a, depts in ((world.gs_alert, GS_DEPTS), (world.ug_alert, UG_DEPTS))
            if who == "admin" or who in depts}
    assert alerts == want
    other = api.client.get("/api/v1/alerts?department=civil_defence", headers=headers).json()
    assert {a["id"] for a in other} == ({world.ug_alert} if who in ("admin", "civil_defence") else set())
    sites = {s["id"] for s in api.client.get("/api/v1/sites", headers=headers).json()}
    visible = {"admin": {"GS-001", "CV-001", "UG-001"}, "safety_bureau": {"GS-001", "CV-001", "UG-001"},
               "commerce": {"GS-001"}, "fire": {"GS-001"}, "street_a": {"GS-001"}, "culture": {"CV-001"},
               "civil_defence": {"UG-001"}, "street_b": {"CV-001", "UG-001"}}
    assert sites == visible[who]
    subs = {s["department"] for s in api.client.get("/api/v1/subscriptions", headers=headers).json()}
    assert subs == ({"commerce", "culture"} if who == "admin" else {who} & {"commerce", "culture"})
    silences = {(s["site"], s["department"]) for s in api.client.get("/api/v1/silences", headers=headers).json()}
    mine = {("GS-001", "commerce")} if who in ("admin", "commerce") else set()
    # a district-wide silence concerns the departments that see its site; the others do not
    # learn of it, nor of its site and reason
    everyones = {("UG-001", None)} if "UG-001" in visible[who] else set()
    assert silences == mine | everyones


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of /api/v1 in the OpenAPI document, path parameters filled in."""
    fill = {"{alert_id}": "1", "{site_id}": "GS-001", "{subscription_id}": "1", "{silence_id}": "1",
            "{department}": "fire", "{username}": "nobody"}
    out: list[tuple[str, str]] = []
    for path, ops in api.app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            for key, value in fill.items():
                path = path.replace(key, value)
            path = re.sub(r"\{[^}]+\}", "1", path)  # ids of resources added later
            out.extend((method.upper(), path) for method in ops
                       if (method.upper(), path) not in PUBLIC)
    return out


PUBLIC = {("POST", "/api/v1/session")}  # signing in is what needs no credentials


@pytest.mark.parametrize("auth", [None, "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz", "bearer  ",
                                  f"Token {ADMIN['Authorization'][7:]}"])
def test_every_api_route_wants_a_valid_bearer_token(shared_api: Api, auth: str | None):
    headers = {} if auth is None else {"Authorization": auth}
    routes = api_routes(shared_api)
    assert len(routes) >= 20
    for method, path in routes:
        r = shared_api.client.request(method, path, headers=headers)
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert isinstance(r.json()["detail"], str)


def test_revoked_tokens_answer_401(api: Api):
    h = api.as_("commerce")
    token = h["Authorization"][7:]
    assert api.client.get("/api/v1/sites", headers=h).status_code == 200
    r = api.client.post("/api/v1/tokens/revoke", json={"token": token}, headers=ADMIN)
    assert r.json() == {"department": None, "revoked": 1}
    r = api.client.get("/api/v1/sites", headers=h)
    assert (r.status_code, r.json()["detail"]) == (401, "invalid or revoked token")
    # revoking a whole department
    t1 = api.client.post("/api/v1/tokens", json={"department": "fire"}, headers=ADMIN).json()["token"]
    t2 = api.client.post("/api/v1/tokens", json={"department": "fire"}, headers=ADMIN).json()["token"]
    assert api.client.delete("/api/v1/tokens/fire", headers=ADMIN).json() == {"department": "fire", "revoked": 2}
    for t in (t1, t2):
        assert api.client.get("/api/v1/sites", headers={"Authorization": f"Bearer {t}"}).status_code == 401


def test_health_and_metrics_need_no_token(api: Api):
    assert api.client.get("/health").json() == {"status": "ok", "components": {"state": {"ok": True}}}
    api.fire("GS-001", "vapor_lel", 60.0)
    text = api.client.get("/metrics").text
    assert 'safewatch_alerts{state="open"} 1.0' in text
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/docs").status_code == 200


def test_health_answers_503_when_degraded(api: Api):
    api.ctx.health = lambda: ("degraded", {"influxdb": {"ok": False, "detail": "connection refused"}})
    r = api.client.get("/health")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "components": {"influxdb": {"ok": False, "detail": "connection refused"}}}


def test_illegal_transitions_answer_409(api: Api):
    alert = api.fire("GS-001", "vapor_lel", 60.0).id
    h = api.as_("commerce")
    post = api.client.post
    assert post(f"/api/v1/alerts/{alert}/ack", json={"note": "seen"}, headers=h).status_code == 200
    r = post(f"/api/v1/alerts/{alert}/ack", json={"note": "again"}, headers=h)
    assert r.status_code == 409
    assert r.json()["detail"] == f"alert {alert} is acknowledged: cannot acknowledge it (only an open alert can be)"
    assert post(f"/api/v1/alerts/{alert}/close", headers=h).status_code == 200  # the body is optional
    for action in ("ack", "close"):
        r = post(f"/api/v1/alerts/{alert}/{action}", json={}, headers=h)
        assert r.status_code == 409 and "is closed" in r.json()["detail"]


NOT_FOUND = [
    "/api/v1/alerts/999999", "/api/v1/alerts/abc", "/api/v1/alerts/-1", "/api/v1/alerts/1%20OR%201=1",
    "/api/v1/sites/NOPE", "/api/v1/sites/GS-001%22", "/api/v1/subscriptions/42", "/api/v1/subscriptions/x",
    "/api/v1/history?site=NOPE&metric=vapor_lel", "/api/v1/trend?site=NOPE&metric=vapor_lel",
    "/api/v1/nothing-here",
]


@pytest.mark.parametrize("path", NOT_FOUND)
def test_unknown_things_answer_404_with_detail(shared_api: Api, path: str):
    r = shared_api.client.get(path, headers=ADMIN)
    assert r.status_code == 404 and isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/api/v1/alerts/999/ack"), ("POST", "/api/v1/alerts/x/close"),
    ("DELETE", "/api/v1/subscriptions/999"), ("DELETE", "/api/v1/silences/999"), ("DELETE", "/api/v1/silences/x"),
])
def test_writes_to_unknown_things_answer_404(shared_api: Api, method: str, path: str):
    r = shared_api.client.request(method, path, headers=ADMIN)
    assert r.status_code == 404 and isinstance(r.json()["detail"], str)


PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
UNPROCESSABLE = [
    ("GET", "/api/v1/alerts?limit=1001", None, "query limit: Input should be less than or equal to 1000"),
    ("GET", "/api/v1/alerts?limit=0", None, "query limit"),
    ("GET", "/api/v1/alerts?state=firing", None, "query state"),
    ("GET", "/api/v1/alerts?severity_at_least=purple", None, "query severity_at_least"),
    ("GET", "/api/v1/alerts?family=bakery", None, "query family"),
    ("GET", "/api/v1/alerts?since=2025-01-01T00:00:00", None, "query since: Input should have timezone info"),
    ("GET", "/api/v1/alerts?since=yesterday", None, "query since"),
    ("GET", "/api/v1/alerts?before=abc", None, "before='abc': expected an alert id"),
    ("GET", "/api/v1/history?site=GS-001", None, "query metric: Field required"),
    ("GET", "/api/v1/history?site=GS-001&metric=vapor_lel&agg=median", None, "query agg"),
    ("GET", "/api/v1/sites?family=bakery", None, "query family"),
    ("POST", "/api/v1/tokens", {"department": "police"}, "department 'police' is not in the district config"),
    ("POST", "/api/v1/tokens", {}, "body department: Field required"),
    ("POST", "/api/v1/tokens", {"department": "fire", "extra": 1}, "body extra: Extra inputs are not permitted"),
    ("DELETE", "/api/v1/tokens/police", None, "department 'police' is not in the district config"),
    ("POST", "/api/v1/subscriptions", {"url": "ftp://example.org/x", "department": "fire"},
     "the scheme must be http or https, not 'ftp'"),
    ("POST", "/api/v1/subscriptions", {"url": "javascript:alert(1)", "department": "fire"}, "http or https"),
    ("POST", "/api/v1/subscriptions", {"url": "http:///nohost", "department": "fire"}, "has no host"),
    ("POST", "/api/v1/subscriptions", {"url": "http://x:99999/", "department": "fire"}, "malformed"),
    ("POST", "/api/v1/subscriptions", {"channel": "mqtt", "url": "a/#", "department": "fire"}, "wildcards"),
    ("POST", "/api/v1/subscriptions", {"channel": "sms", "url": "http://x/", "department": "fire"}, "body channel"),
    ("POST", "/api/v1/subscriptions", {"url": "http://x/"}, "the admin must name the department"),
    ("POST", "/api/v1/subscriptions", {"url": "http://x/", "department": "police"}, "unknown department 'police'"),
    ("POST", "/api/v1/subscriptions", {"url": "http://x/", "department": "fire", "sites": ["NOPE"]},
     "unknown site 'NOPE'"),
    ("POST", "/api/v1/subscriptions", {"url": "http://x/", "department": "fire", "min_severity": "pink"},
     "body min_severity"),
    ("POST", "/api/v1/silences", {"site": "GS-001", "until": PAST}, "a silence must end in the future"),
    ("POST", "/api/v1/silences", {"site": "GS-001", "until": "2030-01-01T00:00:00"}, "timezone"),
    ("POST", "/api/v1/silences", {"site": "NOPE", "until": FUTURE}, "unknown site 'NOPE'"),
    ("POST", "/api/v1/silences", {"site": "GS-001", "metric": "o2_pct", "until": FUTURE}, "has no metric 'o2_pct'"),
    ("POST", "/api/v1/silences", {"site": "GS-001", "until": FUTURE, "department": "police"},
     "unknown department 'police'"),
    ("POST", "/api/v1/alerts/1/ack", {"note": 5}, "body note"),
    ("GET", "/api/v1/alerts?severity=red", None, "query severity: unknown parameter (expected one of before, "
     "department, family, limit, severity_at_least, since, site, state)"),
    ("GET", "/api/v1/sites/GS-001?verbose=1", None, "query verbose: unknown parameter (it takes none)"),
    ("GET", "/api/v1/history?site=GS-001&metric=vapor_lel&aggregate=max", None, "query aggregate: unknown"),
    ("POST", "/api/v1/alerts/1/ack", [1, 2], "body"),
]


@pytest.mark.parametrize(("method", "path", "body", "detail"), UNPROCESSABLE)
def test_invalid_input_answers_422_with_a_detail_sentence(shared_api: Api, method, path, body, detail):
    r = shared_api.client.request(method, path, json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], str)
    assert detail in r.json()["detail"]


BAD_REQUEST = [
    ("/api/v1/history?site=GS-001&metric=vapor_lel&every=1s&start=2025-01-01T00:00:00Z&end=2025-01-02T00:00:00Z",
     "every=1s gives 86400 points over this range, more than 10000; use every=9s or longer"),
    ("/api/v1/history?site=GS-001&metric=vapor_lel&every=0s", "every=0s: expected whole seconds"),
    ("/api/v1/history?site=GS-001&metric=vapor_lel&every=soon", "every: malformed duration 'soon'"),
    ("/api/v1/history?site=GS-001&metric=vapor_lel&start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z",
     "start must be before end"),
    ("/api/v1/history?site=GS-001&metric=vapor_lel&start=0001-01-01T00:00:00Z", "expected a time between"),
    ("/api/v1/history?site=GS-001&metric=vapor_lel&device=d1%0A", "device="),
    ("/api/v1/trend?site=GS-001&metric=vapor_lel&window=2d", "window=2d: expected from 1m to 1d"),
    ("/api/v1/trend?site=GS-001&metric=vapor_lel&window=10s", "window=10s"),
]


@pytest.mark.parametrize(("path", "detail"), BAD_REQUEST)
def test_requests_the_store_refuses_answer_400(shared_api: Api, path: str, detail: str):
    r = shared_api.client.get(path, headers=ADMIN)
    assert r.status_code == 400, r.text
    assert detail in r.json()["detail"]


HOSTILE = ['GS-001" OR "a"="a', "GS-001' OR 1=1 --", "GS 001", "SELECT", "DROP DATABASE x", "time",
           'vapor_lel"; DROP MEASUREMENT gas_station', "vapor_lel FROM gas_station", "gas_station"]


@pytest.mark.parametrize("bad", HOSTILE)
@pytest.mark.parametrize("endpoint", ["history", "trend"])
def test_hostile_site_or_metric_is_refused(shared_api: Api, bad: str, endpoint: str):
    r = shared_api.client.get(f"/api/v1/{endpoint}", params={"site": bad, "metric": "vapor_lel"}, headers=ADMIN)
    assert r.status_code == 404 and r.json()["detail"] == f"site {bad!r} not found"
    r = shared_api.client.get(f"/api/v1/{endpoint}", params={"site": "GS-001", "metric": bad}, headers=ADMIN)
    assert r.status_code == 400 and r.json()["detail"].startswith(f"metric={bad!r}: site GS-001 (gas_station)")
