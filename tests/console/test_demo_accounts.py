"""``safewatch demo``'s console accounts: one per role, each able to sign in."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from domain.district import District, load_district
from service.demo_accounts import create_accounts, plan_accounts
from tests.console.conftest import Console
from tests.support.console_district import config
from tests.support.e2e.district import write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN


@pytest.fixture
def district(tmp_path: Path) -> District:
    return load_district(write_config(tmp_path / "d.yaml", config("demo_accounts")))


@pytest.mark.parametrize(("incident_sites", "want"), [
    (["UG-S1"], {"demo-admin": ("admin", None, []), "demo-operator": ("operator", "hq", []),
                 "demo-viewer": ("viewer", "shelter", []), "demo-site": ("site", None, ["UG-S1"])}),
    ([], {"demo-admin": ("admin", None, []), "demo-operator": ("operator", "hq", []),
          "demo-viewer": ("viewer", "fuel", []), "demo-site": ("site", None, ["GS-N1"])}),
])
def test_one_account_per_role(district: District, incident_sites: list[str],
                              want: dict[str, tuple[str, str | None, list[str]]]) -> None:
    assert {u: (r, d, s) for u, r, d, s in plan_accounts(district, incident_sites)} == want


def test_the_accounts_sign_in(console: Console, tmp_path: Path) -> None:
    district = load_district(write_config(tmp_path / "d.yaml", config(console.name)))
    accounts = create_accounts(console.url, ADMIN_TOKEN, district, ["GS-S1"])
    assert sorted(a.role for a in accounts) == ["admin", "operator", "site", "viewer"]
    for a in accounts:
        r = httpx.post(f"{console.url}/api/v1/session", json={"username": a.username, "password": a.password})
        assert r.status_code == 200, r.text
        assert r.json()["role"] == a.role
        assert a.password in a.line() and a.username in a.line()
