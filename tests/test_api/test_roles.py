"""Who may do what, per role: every /api/v1 endpoint for every kind of caller (contract section 9).

One fresh world per identity: a red GS-001 alert (routed to commerce among others) and a yellow
UG-001 alert (not commerce's). Commerce's people and tokens, a site user of GS-001, the admin by
token and by account, and callers that must get nothing: an expired token, a disabled user's
session and no credentials at all. Rows run in order; the writes come after the reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.test_api import people_support
from tests.test_api.people_support import PeopleApi

papi = people_support.papi  # the fixture: SQLite and PostgreSQL

FUTURE = (datetime.now(UTC) + timedelta(days=1)).isoformat()
ADMINS = ("admin", "admin_user")
COMMERCE = ("operator", "viewer", "token_viewer", "token_operator")
WRITERS = ("admin", "admin_user", "operator", "token_operator")
STAFF = (*ADMINS, *COMMERCE)
EVERYONE = (*STAFF, "site")
SESSIONS = ("admin_user", "operator", "viewer", "site")
SHUT_OUT = ("expired_token", "disabled", "nobody")


def cell(ok: int, who: tuple[str, ...], otherwise: int) -> dict[str, int]:
    return {w: ok if w in who else otherwise for w in EVERYONE}


# name → (method, path, body, {identity: status}); identities not named (SHUT_OUT) expect 401.
TABLE: list[tuple[str, str, str, object, dict[str, int]]] = [
    ("who am I", "GET", "/api/v1/session", None, cell(200, EVERYONE, 0)),
    ("departments", "GET", "/api/v1/departments", None, cell(200, EVERYONE, 0)),
    ("sites", "GET", "/api/v1/sites", None, cell(200, EVERYONE, 0)),
    ("GS site", "GET", "/api/v1/sites/GS-001", None, cell(200, EVERYONE, 0)),
    ("UG site", "GET", "/api/v1/sites/UG-001", None, cell(200, ADMINS, 404)),
    ("alerts", "GET", "/api/v1/alerts", None, cell(200, EVERYONE, 0)),
    ("GS alert", "GET", "/api/v1/alerts/{gs}", None, cell(200, EVERYONE, 0)),
    ("UG alert", "GET", "/api/v1/alerts/{ug}", None, cell(200, ADMINS, 404)),
    ("GS history", "GET", "/api/v1/history?site=GS-001&metric=vapor_lel", None, cell(200, EVERYONE, 0)),
    ("UG trend", "GET", "/api/v1/trend?site=UG-001&metric=o2_pct", None, cell(200, ADMINS, 404)),
    ("subscriptions", "GET", "/api/v1/subscriptions", None, cell(200, STAFF, 403)),
    ("silences", "GET", "/api/v1/silences", None, cell(200, STAFF, 403)),
    ("users", "GET", "/api/v1/users", None, cell(200, ADMINS, 403)),
    ("a user", "GET", "/api/v1/users/{me}", None, cell(200, ADMINS, 403)),
    ("audit", "GET", "/api/v1/audit?limit=5", None, cell(200, ADMINS, 403)),
    ("ack UG alert", "POST", "/api/v1/alerts/{ug}/ack", {"note": "x"}, cell(200, ADMINS, 403)),
    ("ack GS alert", "POST", "/api/v1/alerts/{gs}/ack", {"note": "on it"}, cell(200, WRITERS, 403)),
    ("close GS alert", "POST", "/api/v1/alerts/{gs}/close", {"note": "fixed"}, cell(200, WRITERS, 403)),
    ("subscribe", "POST", "/api/v1/subscriptions",
     {"url": "http://127.0.0.1:9/hook", "department": "commerce"}, cell(201, WRITERS, 403)),
    ("unsubscribe", "DELETE", "/api/v1/subscriptions/{sub}", None, cell(204, WRITERS, 403)),
    ("silence GS", "POST", "/api/v1/silences", {"site": "GS-001", "until": FUTURE}, cell(201, WRITERS, 403)),
    ("end silence", "DELETE", "/api/v1/silences/{silence}", None, cell(204, WRITERS, 403)),
    ("add user", "POST", "/api/v1/users", {"username": "newbie", "role": "viewer", "department": "fire",
                                           "password": "a long enough one"}, cell(201, ADMINS, 403)),
    ("change user", "PATCH", "/api/v1/users/newbie", {"role": "operator"}, cell(200, ADMINS, 403)),
    ("issue token", "POST", "/api/v1/tokens", {"department": "fire", "role": "viewer"}, cell(201, ADMINS, 403)),
    ("revoke tokens", "DELETE", "/api/v1/tokens/fire", None, cell(200, ADMINS, 403)),
    ("sign out", "DELETE", "/api/v1/session", None, {w: 204 if w in SESSIONS else 400 for w in EVERYONE}),
]


@pytest.mark.parametrize("who", [*EVERYONE, *SHUT_OUT])
def test_roles_table(papi: PeopleApi, who: str) -> None:
    person = papi.person(who)
    world = {"gs": papi.fire("GS-001", "vapor_lel", 60.0).id, "ug": papi.fire("UG-001", "o2_pct", 19.0).id,
             "me": "operator" if who == "operator" else "newbie"}
    sub = papi.client.post("/api/v1/subscriptions", headers={"Authorization": "Bearer test-admin-token"},
                           json={"url": "http://127.0.0.1:9/other", "department": "commerce"})
    silence = papi.client.post("/api/v1/silences", headers={"Authorization": "Bearer test-admin-token"},
                               json={"site": "GS-001", "until": FUTURE, "department": "commerce"})
    assert sub.status_code == 201 and silence.status_code == 201, (sub.text, silence.text)
    world |= {"sub": sub.json()["id"], "silence": silence.json()["id"]}
    if who in ADMINS:  # "a user" needs one to exist before "add user" makes it
        papi.add_user("newbie", "viewer", "fire")
        TABLE_ROWS = [r for r in TABLE if r[0] != "add user"]
    else:
        TABLE_ROWS = TABLE
    wrong = []
    for name, method, path, body, expected in TABLE_ROWS:
        want = expected.get(who, 401)
        r = person.request(method, path.format(**world), json=body)
        if r.status_code != want:
            wrong.append(f"{who} × {name}: {r.status_code} (expected {want}) {r.text[:200]}")
        if r.status_code >= 400:
            assert isinstance(r.json()["detail"], str)
    assert not wrong, "\n".join(wrong)


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


def every_route(papi: PeopleApi) -> list[tuple[str, str]]:
    """Every (method, path) of /api/v1, the routes of other resources included, ids filled in."""
    out: list[tuple[str, str]] = []
    for template, ops in papi.app.openapi()["paths"].items():
        if template.startswith("/api/v1"):
            path = re.sub(r"\{[^}]+\}", "1", template.replace("{site_id}", "GS-001"))
            out.extend((method.upper(), path) for method in ops if (method.upper(), path) != SIGN_IN)
    return out


SIGN_IN = ("POST", "/api/v1/session")  # the one route that needs no credentials


@pytest.mark.parametrize("who", ["expired_token", "disabled", "viewer", "token_viewer"])
def test_every_route_refuses_the_shut_out_and_lets_no_viewer_change_anything(papi: PeopleApi, who: str) -> None:
    person = papi.person(who)
    papi.fire("GS-001", "vapor_lel", 60.0)
    wrong = []
    for method, path in every_route(papi):
        if who in ("viewer", "token_viewer") and method == "GET" and path.endswith("/stream"):
            continue  # an open stream never ends: test_people_stream covers it
        r = person.request(method, path, json={})
        changed = method != "GET" and r.status_code < 300 and (method, path) != ("DELETE", "/api/v1/session")
        if (who in SHUT_OUT and r.status_code != 401) or r.status_code >= 500 or changed:
            wrong.append(f"{who} × {method} {path}: {r.status_code} {r.text[:160]}")
    assert not wrong, "\n".join(wrong)
