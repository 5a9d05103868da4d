"""The demo's console accounts: one per role, made through the HTTP API with the admin token.

Each demo run starts with a fresh alert book (and so a fresh user table), so the accounts are
made anew every time with new passwords, printed once for the person at the terminal.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from domain.district import District


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    role: str
    password: str
    scope: str  # what the account sees, for the printout: a department id or site ids

    def line(self) -> str:
        return f"  {self.role:<9} {self.username:<16} password {self.password:<18} ({self.scope})"


def plan_accounts(district: District, site_ids: list[str]) -> list[tuple[str, str, str | None, list[str]]]:
    """(username, role, department, sites): the operator at the comprehensive department (which
    hears every serious alert), the viewer at the sector department of the first incident's site,
    the site user at that site."""
    deps = list(district.departments.values())
    comprehensive = next((d.id for d in deps if d.kind == "comprehensive"), deps[0].id)
    first = district.sites[site_ids[0]] if site_ids else next(iter(district.sites.values()), None)
    sector = first.sector if first is not None else comprehensive
    out: list[tuple[str, str, str | None, list[str]]] = [
        ("demo-admin", "admin", None, []),
        ("demo-operator", "operator", comprehensive, []),
        ("demo-viewer", "viewer", sector, []),
    ]
    if first is not None:
        out.append(("demo-site", "site", None, [first.id]))
    return out


def create_accounts(api: str, token: str, district: District, site_ids: list[str]) -> list[Account]:
    """Creates the accounts of ``plan_accounts``; raises httpx.HTTPError or RuntimeError naming the
    account that the API refused."""
    made: list[Account] = []
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=10.0) as client:
        for username, role, department, sites in plan_accounts(district, site_ids):
            password = secrets.token_urlsafe(12)
            r = client.post("/api/v1/users", json={"username": username, "role": role, "department": department,
                                                   "sites": sites, "password": password})
            if r.status_code != 201:
                raise RuntimeError(f"creating demo account {username!r}: {r.status_code} {r.text[:200]}")
            made.append(Account(username, role, password, department or ",".join(sites) or "whole district"))
    return made
