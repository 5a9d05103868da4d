"""Signing in and out, the per-name lock, CSRF, idle expiry, revocation, passwords, token roles and
expiry, the audit trail (contract section 9), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from store.state.models_people import SessionRow
from store.state.people import LOCK_MS
from tests.support.api import ADMIN
from tests.support.people import PASSWORD, PeopleApi

SESSION = "/api/v1/session"


def test_sign_in_sets_a_strict_cookie_and_answers_who(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    client = papi.client_for()
    r = client.post(SESSION, json={"username": "olga", "password": PASSWORD})
    body = r.json()
    assert r.status_code == 200
    assert {k: v for k, v in body.items() if k != "csrf_token"} == {
        "username": "olga", "role": "operator", "department": "commerce", "sites": []}
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("safewatch_session=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http
    assert client.get(SESSION).json() == body  # csrf_token included
    secure = TestClient(papi.app, base_url="https://testserver")
    r = secure.post(SESSION, json={"username": "olga", "password": PASSWORD})
    assert "Secure" in r.headers["set-cookie"]


def test_one_message_for_a_wrong_name_or_password_and_failures_are_audited(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    answers = set()
    for name, password in (("olga", "wrong password!"), ("nobody-here", PASSWORD), ("olga", "")):
        r = papi.client.post(SESSION, json={"username": name, "password": password})
        answers.add((r.status_code, r.json()["detail"]))
    assert answers == {(401, "wrong username or password")}
    failed = papi.client.get("/api/v1/audit?action=session.sign_in_failed", headers=ADMIN).json()
    assert [(e["actor"], e["detail"], e["ip"]) for e in failed] == [
        ("olga", "wrong password", "testclient"), ("nobody-here", "unknown user", "testclient"),
        ("olga", "wrong password", "testclient")][::-1]


def test_five_failures_lock_the_name_for_fifteen_minutes_but_never_the_admin_token(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    papi.add_user("petra", "viewer", "commerce")
    for _ in range(5):
        assert papi.client.post(SESSION, json={"username": "olga", "password": "not it at all"}).status_code == 401
    r = papi.client.post(SESSION, json={"username": "olga", "password": PASSWORD})  # even the right one
    assert r.status_code == 429 and "olga" in r.json()["detail"]
    assert 890 <= int(r.headers["retry-after"]) <= 900
    assert papi.client.post(SESSION, json={"username": "petra", "password": PASSWORD}).status_code == 200
    for _ in range(6):  # "admin" as a name to sign in with is locked too: the admin token is not
        papi.client.post(SESSION, json={"username": "admin", "password": "guessing...."})
    assert papi.client.get("/api/v1/users", headers=ADMIN).status_code == 200
    last = papi.state.list_audit(actor="olga", limit=1)[0]
    assert papi.state.lock_retry_after("olga", at_ms=last.at_ms + LOCK_MS + 1000) is None


def test_cookie_writes_need_the_csrf_token(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    olga = papi.sign_in("olga")
    gs = papi.fire("GS-001", "vapor_lel", 60.0).id
    path = f"/api/v1/alerts/{gs}/ack"
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        r = olga.client.post(path, json={"note": "x"}, headers=headers)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    assert olga.client.get(f"/api/v1/alerts/{gs}").status_code == 200  # reads need none
    assert olga.client.delete(SESSION).status_code == 403  # signing out is a change too
    papi.add_user("root", "admin")
    root = papi.sign_in("root")
    r = root.client.patch("/api/v1/users/olga", json={"role": "viewer"})
    assert r.status_code == 403 and "X-CSRF-Token" in r.json()["detail"]
    assert root.request("PATCH", "/api/v1/users/olga", json={"role": "viewer"}).json()["role"] == "viewer"
    assert root.request("PATCH", "/api/v1/users/olga", json={"role": "operator"}).json()["department"] == \
        "commerce"
    r = olga.request("POST", path, json={"note": "on it"})
    assert r.status_code == 200 and r.json()["events"][-1]["by"] == "olga"
    token = papi.token("commerce")  # a bearer token is not sent by browsers on its own: no CSRF
    assert token.request("POST", f"/api/v1/alerts/{gs}/close", json={}).json()["events"][-1]["by"] == \
        "token:commerce"


def test_idle_sessions_expire(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    olga = papi.sign_in("olga")
    assert olga.request("GET", SESSION).status_code == 200
    idle = 12 * 3_600_000 + 60_000  # the default idle time, and a minute
    with papi.state.engine.begin() as conn:
        conn.execute(update(SessionRow).values(last_seen_ms=SessionRow.last_seen_ms - idle))
    r = olga.request("GET", SESSION)
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_sign_out_disabling_and_a_new_password_end_sessions_at_once(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    first, second, third = (papi.sign_in("olga") for _ in range(3))
    cookie = first.client.cookies["safewatch_session"]
    assert first.request("DELETE", SESSION).status_code == 204
    again = papi.client_for()
    r = again.get(SESSION, headers={"Cookie": f"safewatch_session={cookie}"})
    assert r.status_code == 401  # the old cookie value is dead, not just forgotten by the client
    assert second.request("GET", SESSION).status_code == 200
    r = papi.client.patch("/api/v1/users/olga", headers=ADMIN, json={"password": "a brand new one"})
    assert r.status_code == 200
    assert second.request("GET", SESSION).status_code == 401
    assert third.request("GET", SESSION).status_code == 401
    fourth = papi.sign_in("olga", "a brand new one")
    assert papi.client.patch("/api/v1/users/olga", headers=ADMIN, json={"disabled": True}).status_code == 200
    assert fourth.request("GET", SESSION).status_code == 401
    r = papi.client.post(SESSION, json={"username": "olga", "password": "a brand new one"})
    assert (r.status_code, r.json()["detail"]) == (401, "wrong username or password")


def test_passwords_are_checked_hashed_and_never_returned(papi: PeopleApi) -> None:
    short = "short9char"[:9]
    r = papi.client.post("/api/v1/users", headers=ADMIN, json={
        "username": "olga", "role": "operator", "department": "commerce", "password": short})
    assert r.status_code == 422 and "at least 10 characters" in r.json()["detail"]
    assert short not in r.text
    papi.add_user("olga", "operator", "commerce")
    listed = papi.client.get("/api/v1/users", headers=ADMIN)
    assert PASSWORD not in listed.text and "hash" not in listed.text
    stored = papi.state.engine.connect().exec_driver_sql("SELECT password_hash FROM users").scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    r = papi.client.post("/api/v1/users", headers=ADMIN, json={
        "username": "olga", "role": "viewer", "department": "commerce", "password": PASSWORD})
    assert r.status_code == 409


BAD_USERS: list[tuple[dict[str, object], str]] = [
    ({"role": "operator"}, "body department: a operator needs one"),
    ({"role": "viewer", "department": "nope"}, "body department='nope': not in the district config"),
    ({"role": "site"}, "body sites: a site user needs at least one site id"),
    ({"role": "site", "sites": ["XX-9"]}, "body sites: 'XX-9' is not a site of the district config"),
    ({"role": "admin", "department": "commerce"}, "body department='commerce': an admin user has none"),
    ({"role": "boss"}, "body role: Input should be"),
    ({"role": "viewer", "department": "commerce", "username": "bad name"}, "body username='bad name'"),
]


def test_bad_accounts_answer_422_naming_the_field(papi: PeopleApi) -> None:
    for change, detail in BAD_USERS:
        body: dict[str, object] = {"username": "x1", "password": PASSWORD, "sites": [], **change}
        r = papi.client.post("/api/v1/users", headers=ADMIN, json=body)
        assert r.status_code == 422 and r.json()["detail"].startswith(detail), (change, r.text)
    assert papi.client.patch("/api/v1/users/ghost", headers=ADMIN, json={"disabled": True}).status_code == 404


def test_tokens_carry_a_role_and_an_expiry(papi: PeopleApi) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    r = papi.client.post("/api/v1/tokens", headers=ADMIN,
                         json={"department": "commerce", "role": "viewer", "expires_at": later.isoformat()})
    body = r.json()
    assert (r.status_code, body["role"], body["department"]) == (201, "viewer", "commerce")
    assert datetime.fromisoformat(body["expires_at"]) == later.replace(microsecond=later.microsecond // 1000 * 1000)
    viewer = {"Authorization": f"Bearer {body['token']}"}
    assert papi.client.get(SESSION, headers=viewer).json() == {
        "username": None, "role": "viewer", "department": "commerce", "sites": [], "csrf_token": None}
    assert papi.client.post("/api/v1/tokens", headers=ADMIN, json={"department": "commerce"}).json()["role"] == \
        "operator"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    r = papi.client.post("/api/v1/tokens", headers=ADMIN, json={"department": "commerce", "expires_at": past})
    assert r.status_code == 422 and "expires_at" in r.json()["detail"]
    r = papi.client.post("/api/v1/tokens", headers=ADMIN, json={"department": "commerce", "role": "admin"})
    assert r.status_code == 422
    expired = papi.token("commerce", expires_ms=1)
    r = expired.request("GET", "/api/v1/sites")
    assert (r.status_code, r.json()["detail"]) == (401, "token expired")


def test_the_audit_trail_names_who_did_what_from_where(papi: PeopleApi) -> None:
    papi.add_user("olga", "operator", "commerce")
    olga = papi.sign_in("olga")
    gs = papi.fire("GS-001", "vapor_lel", 60.0).id
    assert olga.request("POST", f"/api/v1/alerts/{gs}/ack", json={"note": "crew sent"}).status_code == 200
    token = papi.token("commerce")
    assert token.request("POST", f"/api/v1/alerts/{gs}/close", json={}).status_code == 200
    assert olga.request("DELETE", SESSION).status_code == 204
    trail = papi.client.get("/api/v1/audit", headers=ADMIN).json()
    rows = [(e["actor"], e["role"], e["department"], e["action"], e["target"]) for e in trail]
    assert rows == [
        ("olga", "operator", "commerce", "session.sign_out", "user:olga"),
        ("token:commerce", "operator", "commerce", "alert.close", f"alert:{gs}"),
        ("admin", "admin", None, "token.create", "token:commerce"),
        ("olga", "operator", "commerce", "alert.ack", f"alert:{gs}"),
        ("olga", "operator", "commerce", "session.sign_in", "user:olga"),
        ("admin", "admin", None, "user.create", "user:olga"),
    ]
    assert all(e["ip"] == "testclient" and e["at"].endswith("+08:00") for e in trail)
    assert trail[3]["detail"] == "crew sent"
    q = papi.client.get("/api/v1/audit?actor=olga&action=session.*&limit=1", headers=ADMIN).json()
    assert [e["action"] for e in q] == ["session.sign_out"]
    since = papi.client.get("/api/v1/audit", headers=ADMIN, params={"since": trail[1]["at"]}).json()
    assert [e["action"] for e in since] == ["session.sign_out", "alert.close"]
    r = papi.client.get("/api/v1/audit?limit=0", headers=ADMIN)
    assert r.status_code == 422
