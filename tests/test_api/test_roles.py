"""Who may do what, per role: every /api/v1 endpoint for every kind of caller (contract sections 9
and 10).

One fresh world per identity: a red GS-001 alert (routed to commerce among others) and a yellow
UG-001 alert (not commerce's), an inspection hazard at each of the two sites with evidence on
the GS-001 one, a subscription and a silence of commerce's. Commerce's people and tokens, a site
user of GS-001, the admin by token and by account, and callers that must get nothing: an
expired token, a disabled user's session and no credentials at all. Rows run in order; the
writes come after the reads. ``test_the_table_names_every_endpoint`` keeps it complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.api import ADMIN
from tests.support.people import PeopleApi, Person

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
ADMINS = ("admin", "admin_user")
COMMERCE = ("operator", "viewer", "token_viewer", "token_operator")
WRITERS = ("admin", "admin_user", "operator", "token_operator")
HAZARD_WRITERS = (*WRITERS, "site")  # a site user moves its own sites' hazards (not verify)
STAFF = (*ADMINS, *COMMERCE)
EVERYONE = (*STAFF, "site")
SESSIONS = ("admin_user", "operator", "viewer", "site")
SHUT_OUT = ("expired_token", "disabled", "nobody")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
FILE = {"file": "a PNG"}  # a body that marks a row as the multipart upload of PNG
PLAN = {"measures": "clear the exit", "owner": "王五", "funds": "2000 yuan", "deadline": FUTURE,
        "contingency": "a fire watch meanwhile"}
PERIOD = "start=2020-01-01T00:00:00Z&end=2100-01-01T00:00:00Z"


def send(person: Person, method: str, path: str, body: object) -> tuple[int, str]:
    """(status, text) of one request: JSON, the multipart upload for ``FILE``, or for the SSE
    stream only its status (the stream itself never ends)."""
    if path.endswith("/stream"):
        with person.client.stream(method, path, headers=person.headers) as r:
            return r.status_code, "" if r.status_code < 400 else r.read().decode()
    if body is FILE:
        headers = dict(person.headers) | ({"X-CSRF-Token": person.csrf} if person.csrf else {})
        r = person.client.request(method, path, headers=headers, files={"file": ("photo.png", PNG, "image/png")})
        return r.status_code, r.text
    r = person.request(method, path, json=body)
    return r.status_code, r.text


def cell(ok: int, who: tuple[str, ...], otherwise: int) -> dict[str, int]:
    return {w: ok if w in who else otherwise for w in EVERYONE}


# name → (method, path, body, {identity: status}); identities not named (SHUT_OUT) expect 401.
TABLE: list[tuple[str, str, str, object, dict[str, int]]] = [
    ("who am I", "GET", "/api/v1/session", None, cell(200, EVERYONE, 0)),
    ("departments", "GET", "/api/v1/departments", None, cell(200, EVERYONE, 0)),
    ("district", "GET", "/api/v1/district", None, cell(200, EVERYONE, 0)),
    ("rules", "GET", "/api/v1/rules", None, cell(200, EVERYONE, 0)),
    ("sites", "GET", "/api/v1/sites", None, cell(200, EVERYONE, 0)),
    ("GS site", "GET", "/api/v1/sites/GS-001", None, cell(200, EVERYONE, 0)),
    ("UG site", "GET", "/api/v1/sites/UG-001", None, cell(200, ADMINS, 404)),
    ("alerts", "GET", "/api/v1/alerts", None, cell(200, EVERYONE, 0)),
    ("GS alert", "GET", "/api/v1/alerts/{gs}", None, cell(200, EVERYONE, 0)),
    ("UG alert", "GET", "/api/v1/alerts/{ug}", None, cell(200, ADMINS, 404)),
    ("GS history", "GET", "/api/v1/history?site=GS-001&metric=vapor_lel", None, cell(200, EVERYONE, 0)),
    ("UG trend", "GET", "/api/v1/trend?site=UG-001&metric=o2_pct", None, cell(200, ADMINS, 404)),
    ("stream", "GET", "/api/v1/stream", None, cell(200, EVERYONE, 0)),
    ("subscriptions", "GET", "/api/v1/subscriptions", None, cell(200, STAFF, 403)),
    ("a subscription", "GET", "/api/v1/subscriptions/{sub}", None, cell(200, STAFF, 403)),
    ("silences", "GET", "/api/v1/silences", None, cell(200, STAFF, 403)),
    ("hazards", "GET", "/api/v1/hazards", None, cell(200, EVERYONE, 0)),
    ("GS hazard", "GET", "/api/v1/hazards/{hz}", None, cell(200, EVERYONE, 0)),
    ("UG hazard", "GET", "/api/v1/hazards/{ughz}", None, cell(200, ADMINS, 404)),
    ("GS evidence", "GET", "/api/v1/hazards/{hz}/attachments/{att}", None, cell(200, EVERYONE, 0)),
    ("hazard report", "GET", f"/api/v1/reports/hazards?{PERIOD}", None, cell(200, EVERYONE, 0)),
    ("GS credit", "GET", "/api/v1/sites/GS-001/credit", None, cell(200, EVERYONE, 0)),
    ("UG credit", "GET", "/api/v1/sites/UG-001/credit", None, cell(200, ADMINS, 404)),
    ("credit list", "GET", "/api/v1/credit", None, cell(200, EVERYONE, 0)),
    ("cluster", "GET", "/api/v1/cluster", None, cell(200, ADMINS, 403)),
    ("users", "GET", "/api/v1/users", None, cell(200, ADMINS, 403)),
    ("a user", "GET", "/api/v1/users/{me}", None, cell(200, ADMINS, 403)),
    ("audit", "GET", "/api/v1/audit?limit=5", None, cell(200, ADMINS, 403)),
    ("ack UG alert", "POST", "/api/v1/alerts/{ug}/ack", {"note": "x"}, cell(200, ADMINS, 403)),
    ("ack GS alert", "POST", "/api/v1/alerts/{gs}/ack", {"note": "on it"}, cell(200, WRITERS, 403)),
    ("close GS alert", "POST", "/api/v1/alerts/{gs}/close", {"note": "fixed"}, cell(200, WRITERS, 403)),
    ("file a hazard", "POST", "/api/v1/hazards", {"site": "GS-001", "title": "blocked exit"},
     cell(201, HAZARD_WRITERS, 403)),  # the site user's is a self-report, the others' inspections
    ("UG hazard progress", "POST", "/api/v1/hazards/{ughz}/progress", {"note": "x"}, cell(200, ADMINS, 404)),
    ("plan", "POST", "/api/v1/hazards/{hz}/plan", PLAN, cell(200, HAZARD_WRITERS, 403)),
    ("progress", "POST", "/api/v1/hazards/{hz}/progress", {"note": "half done"}, cell(200, HAZARD_WRITERS, 403)),
    ("evidence", "POST", "/api/v1/hazards/{hz}/attachments", FILE, cell(201, HAZARD_WRITERS, 403)),
    ("submit", "POST", "/api/v1/hazards/{hz}/submit", {"note": "done"}, cell(200, HAZARD_WRITERS, 403)),
    # commerce is GS-001's sector department: its operators verify (销账); viewers and the site may not
    ("verify", "POST", "/api/v1/hazards/{hz}/verify", {"accept": True, "note": "checked"},
     cell(200, WRITERS, 403)),
    ("subscribe", "POST", "/api/v1/subscriptions",
     {"url": "http://127.0.0.1:9/hook", "department": "commerce"}, cell(201, WRITERS, 403)),
    ("unsubscribe", "DELETE", "/api/v1/subscriptions/{sub}", None, cell(204, WRITERS, 403)),
    ("silence GS", "POST", "/api/v1/silences", {"site": "GS-001", "until": FUTURE}, cell(201, WRITERS, 403)),
    ("end silence", "DELETE", "/api/v1/silences/{silence}", None, cell(204, WRITERS, 403)),
    ("add user", "POST", "/api/v1/users", {"username": "newbie", "role": "viewer", "department": "fire",
                                           "password": "a long enough one"}, cell(201, ADMINS, 403)),
    ("change user", "PATCH", "/api/v1/users/newbie", {"role": "operator"}, cell(200, ADMINS, 403)),
    ("issue token", "POST", "/api/v1/tokens", {"department": "fire", "role": "viewer"}, cell(201, ADMINS, 403)),
    ("revoke a token", "POST", "/api/v1/tokens/revoke", {"token": "not one"}, cell(404, ADMINS, 403)),
    ("revoke tokens", "DELETE", "/api/v1/tokens/fire", None, cell(200, ADMINS, 403)),
    ("sign out", "DELETE", "/api/v1/session", None, {w: 204 if w in SESSIONS else 400 for w in EVERYONE}),
]


def make_world(papi: PeopleApi, who: str) -> dict[str, str]:
    """The alerts, hazards, evidence, subscription and silence the table's paths name, made by the
    admin; ``me`` is the user "a user" reads."""
    def made(r: httpx.Response) -> str:
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    c = papi.client
    world = {"gs": papi.fire("GS-001", "vapor_lel", 60.0).id, "ug": papi.fire("UG-001", "o2_pct", 19.0).id,
             "me": "operator" if who == "operator" else "newbie"}
    world["sub"] = made(c.post("/api/v1/subscriptions", headers=ADMIN,
                               json={"url": "http://127.0.0.1:9/other", "department": "commerce"}))
    world["silence"] = made(c.post("/api/v1/silences", headers=ADMIN,
                                   json={"site": "GS-001", "until": FUTURE, "department": "commerce"}))
    world["hz"] = made(c.post("/api/v1/hazards", headers=ADMIN, json={"site": "GS-001", "title": "blocked exit"}))
    world["ughz"] = made(c.post("/api/v1/hazards", headers=ADMIN, json={"site": "UG-001", "title": "damp"}))
    world["att"] = made(c.post(f"/api/v1/hazards/{world['hz']}/attachments", headers=ADMIN,
                               files={"file": ("photo.png", PNG, "image/png")}))
    return world


@pytest.mark.parametrize("who", [*EVERYONE, *SHUT_OUT])
def test_roles_table(papi: PeopleApi, who: str) -> None:
    person = papi.person(who)
    world = make_world(papi, who)
    if who in ADMINS:  # "a user" needs one to exist before "add user" makes it
        papi.add_user("newbie", "viewer", "fire")
        rows = [r for r in TABLE if r[0] != "add user"]
    else:
        rows = TABLE
    wrong = []
    for name, method, path, body, expected in rows:
        want = expected.get(who, 401)
        status, text = send(person, method, path.format(**world), body)
        if status != want:
            wrong.append(f"{who} × {name}: {status} (expected {want}) {text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_the_table_names_every_endpoint(papi: PeopleApi) -> None:
    """Every /api/v1 operation but signing in has a row: a new endpoint needs one."""
    missing = []
    for template, ops in papi.app.openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method in (m.upper() for m in ops):
            if template.startswith("/api/v1") and (method, template) != SIGN_IN and not any(
                    row_method == method and pattern.match(path.split("?")[0])
                    for _, row_method, path, _, _ in TABLE):
                missing.append(f"{method} {template}")
    assert missing == []


def test_site_user_sees_only_its_sites(papi: PeopleApi) -> None:
    site = papi.person("site")
    gs = papi.fire("GS-001", "vapor_lel", 60.0).id
    ug = papi.fire("UG-001", "o2_pct", 19.0).id
    assert {a["id"] for a in site.request("GET", "/api/v1/alerts").json()} == {gs}
    assert site.request("GET", "/api/v1/alerts?site=UG-001").json() == []
    assert [s["id"] for s in site.request("GET", "/api/v1/sites").json()] == ["GS-001"]
    r = site.request("GET", f"/api/v1/alerts/{ug}")
    assert (r.status_code, r.json()["detail"]) == (404, f"alert {ug!r} not found")
    r = site.request("POST", f"/api/v1/alerts/{gs}/ack", json={"note": "mine"})
    assert r.status_code == 403 and "role site" in r.json()["detail"]
    detail = site.request("GET", "/api/v1/sites/GS-001").json()
    assert [a["id"] for a in detail["open_alerts"]] == [gs]


def test_viewer_cannot_acknowledge(papi: PeopleApi) -> None:
    gs = papi.fire("GS-001", "vapor_lel", 60.0).id
    for who in ("viewer", "token_viewer"):
        r = papi.person(who).request("POST", f"/api/v1/alerts/{gs}/ack", json={"note": "x"})
        assert r.status_code == 403
        assert r.json()["detail"].startswith("operators and admins only: role viewer")


SIGN_IN = ("POST", "/api/v1/session")  # the one route that needs no credentials
SIGN_OUT = ("DELETE", "/api/v1/session")
# A valid body for every write, so the sweep meets each route's role check and not a 422 from the
# body's validation, which FastAPI runs before a handler's own checks of who is calling.
BODIES: dict[tuple[str, str], object] = {
    ("POST", "/api/v1/users"): {"username": "another", "role": "viewer", "department": "fire",
                                "password": "a long enough one"},
    ("PATCH", "/api/v1/users/{username}"): {"role": "operator"},
    ("POST", "/api/v1/tokens"): {"department": "fire", "role": "viewer"},
    ("POST", "/api/v1/tokens/revoke"): {"token": "not one"},
    ("DELETE", "/api/v1/tokens/{department}"): None,
    ("POST", "/api/v1/alerts/{alert_id}/ack"): {"note": "x"},
    ("POST", "/api/v1/alerts/{alert_id}/close"): {"note": "x"},
    ("POST", "/api/v1/subscriptions"): {"url": "http://127.0.0.1:9/hook"},
    ("DELETE", "/api/v1/subscriptions/{subscription_id}"): None,
    ("POST", "/api/v1/silences"): {"site": "GS-001", "until": FUTURE},
    ("DELETE", "/api/v1/silences/{silence_id}"): None,
    ("POST", "/api/v1/hazards"): {"site": "GS-001", "title": "blocked exit"},
    ("POST", "/api/v1/hazards/{hazard_id}/plan"): PLAN,
    ("POST", "/api/v1/hazards/{hazard_id}/progress"): {"note": "half done"},
    ("POST", "/api/v1/hazards/{hazard_id}/attachments"): FILE,
    ("POST", "/api/v1/hazards/{hazard_id}/submit"): {"note": "done"},
    ("POST", "/api/v1/hazards/{hazard_id}/verify"): {"accept": True, "note": "checked"},
    SIGN_OUT: None,
}
# What a site user may change: its sites' hazards up to review (contract section 9), and sign out.
SITE_WRITES = {("POST", "/api/v1/hazards"), ("POST", "/api/v1/hazards/{hazard_id}/plan"),
               ("POST", "/api/v1/hazards/{hazard_id}/progress"), ("POST", "/api/v1/hazards/{hazard_id}/attachments"),
               ("POST", "/api/v1/hazards/{hazard_id}/submit"), SIGN_OUT}


def every_route(papi: PeopleApi, world: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(method, template, path) of every /api/v1 operation but signing in, the world's ids filled in;
    signing out last."""
    ids = {"alert_id": world["gs"], "hazard_id": world["hz"], "attachment_id": world["att"],
           "subscription_id": world["sub"], "silence_id": world["silence"], "site_id": "GS-001",
           "department": "fire", "username": "newbie"}
    ops = [(method.upper(), template) for template, item in papi.app.openapi()["paths"].items()
           if template.startswith("/api/v1") for method in item]
    for method, template in sorted(ops, key=lambda op: op == SIGN_OUT):
        if (method, template) != SIGN_IN:
            yield method, template, template.format(**ids)


@pytest.mark.parametrize("who", ["expired_token", "disabled", "viewer", "token_viewer", "site"])
def test_every_route_refuses_the_shut_out_and_lets_no_viewer_change_anything(papi: PeopleApi, who: str) -> None:
    """The shut out get 401 everywhere; a viewer 403 for every write; a site user 403 for every
    write but its hazards'."""
    person = papi.person(who)
    world = make_world(papi, who)
    papi.add_user("newbie", "viewer", "fire")
    wrong = []
    for method, template, path in every_route(papi, world):
        write = method != "GET"
        assert not write or (method, template) in BODIES, f"no valid body for {method} {template}: add one"
        status, text = send(person, method, path, BODIES.get((method, template)))
        if who in SHUT_OUT:
            want: str | int = 401
        elif not write:
            want = "no 5xx"
        elif (method, template) == SIGN_OUT:
            want = 400 if who == "token_viewer" else 204
        elif who == "site" and (method, template) in SITE_WRITES:
            want = "2xx"
        else:
            want = 403
        ok = status < 500 if want == "no 5xx" else status < 300 if want == "2xx" else status == want
        if not ok:
            wrong.append(f"{who} × {method} {path}: {status} (expected {want}) {text[:160]}")
    assert not wrong, "\n".join(wrong)
