"""The session cookie's Secure flag (SAFEWATCH_COOKIE_SECURE): ``auto`` follows the scheme the
server sees; ``true`` marks it Secure behind a TLS proxy whose headers are not trusted (the
server sees plain http); ``false`` never does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from domain.settings import Settings
from tests.support.people import PASSWORD, PeopleApi


@pytest.mark.parametrize(("setting", "scheme", "secure"), [
    ("auto", "http", False), ("auto", "https", True),
    ("true", "http", True), ("true", "https", True),
    ("false", "http", False), ("false", "https", False),
])
def test_the_cookie_is_secure_as_set(sqlite_papi: PeopleApi, monkeypatch: pytest.MonkeyPatch, setting: str,
                                     scheme: str, secure: bool) -> None:
    monkeypatch.setattr(sqlite_papi.ctx.settings, "cookie_secure", setting)
    client = TestClient(sqlite_papi.app, base_url=f"{scheme}://testserver")
    r = client.post("/api/v1/session", json={"username": "olga", "password": PASSWORD})
    assert r.status_code == 200
    assert ("Secure" in r.headers["set-cookie"]) is secure


def test_the_setting_takes_auto_true_or_false(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().cookie_secure == "auto"
    monkeypatch.setenv("SAFEWATCH_COOKIE_SECURE", "TRUE")
    assert Settings().cookie_secure == "true"
    monkeypatch.setenv("SAFEWATCH_COOKIE_SECURE", "yes")
    with pytest.raises(ValidationError, match="SAFEWATCH_COOKIE_SECURE='yes': expected one of auto, true, false"):
        Settings()
