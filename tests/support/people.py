"""People in the API: users of every role signed in by cookie, department tokens with a role, and
helpers to act as each of them. The ``papi`` fixture (tests/test_api/conftest.py) builds one on the
``state_url`` database, SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from domain.clock import now_ms
from store.state import people as people_store
from tests.support.api import ADMIN, Api

PASSWORD = "correct horse battery"


@dataclass
class Person:
    """One identity: its own client (its own cookie jar) and the headers it sends."""

    client: TestClient
    headers: dict[str, str] = field(default_factory=dict)
    csrf: str | None = None

    def request(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = dict(self.headers)
        if self.csrf is not None and method in ("POST", "PATCH", "DELETE"):
            headers["X-CSRF-Token"] = self.csrf
        r: httpx.Response = self.client.request(method, path, json=json, headers=headers)
        return r


class PeopleApi(Api):
    def client_for(self) -> TestClient:
        return TestClient(self.app)

    def add_user(self, username: str, role: str, department: str | None = None,
                 sites: tuple[str, ...] = ()) -> None:
        r = self.client.post("/api/v1/users", headers=ADMIN, json={
            "username": username, "role": role, "department": department, "sites": list(sites),
            "password": PASSWORD})
        assert r.status_code == 201, r.text

    def sign_in(self, username: str, password: str = PASSWORD) -> Person:
        client = self.client_for()
        r = client.post("/api/v1/session", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return Person(client, csrf=r.json()["csrf_token"])

    def token(self, department: str, role: str = "operator", expires_ms: int | None = None) -> Person:
        if expires_ms is None:
            r = self.client.post("/api/v1/tokens", headers=ADMIN, json={"department": department, "role": role})
            assert r.status_code == 201, r.text
            token = r.json()["token"]
        else:  # already expired: the API refuses to issue those, the store does not
            token = self.state.issue_token(department, role, expires_ms)
        return Person(self.client_for(), headers={"Authorization": f"Bearer {token}"})

    def person(self, who: str) -> Person:
        """``admin`` (token), ``admin_user``, ``operator``, ``viewer``, ``site`` (sessions of commerce's
        people and of GS-001), ``token_viewer``/``token_operator`` (commerce), ``expired_token``,
        ``disabled`` (a session whose user was disabled afterwards), ``nobody``."""
        if who == "admin":
            return Person(self.client_for(), headers=dict(ADMIN))
        if who == "nobody":
            return Person(self.client_for())
        if who.startswith("token_"):
            return self.token("commerce", who.removeprefix("token_"))
        if who == "expired_token":
            return self.token("commerce", "operator", expires_ms=now_ms() - 1000)
        spec = {"admin_user": ("admin", None, ()), "operator": ("operator", "commerce", ()),
                "viewer": ("viewer", "commerce", ()), "site": ("site", None, ("GS-001",)),
                "disabled": ("operator", "commerce", ())}[who]
        self.add_user(who, *spec)
        p = self.sign_in(who)
        if who == "disabled":
            r = self.client.patch("/api/v1/users/disabled", headers=ADMIN, json={"disabled": True})
            assert r.status_code == 200, r.text
        return p


def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with the smallest parameters: the suite signs in hundreds of times (the real
    parameters cost about 0.25 s per hash on the CI machine)."""
    monkeypatch.setattr(people_store, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
