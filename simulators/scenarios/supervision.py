"""Hazard scenarios, played through the HTTP API as the people involved (contract section 10).

Devices cannot report hazards; enterprises do (隐患自查自报, seed item 16). These scenarios sign in
as a site user of the enterprise (an account the admin creates for it) and act through
``/api/v1`` like the console would:

- ``self-report``: the enterprise reports a hazard, files its plan with the five essentials,
  notes progress, uploads a photo and submits it for review;
- ``overdue-climb``: the enterprise reports a hazard and commits to a short time limit in its
  plan, then does nothing: the overdue job marks it past its deadline and reports it up
  (``supervision.overdue``), step by step as the time since the deadline grows.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from domain.district import District

# A 1×1 PNG: evidence that passes the API's content check.
PHOTO = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
SCENARIOS = ("self-report", "overdue-climb")


class HazardScenarioError(RuntimeError):
    """The API refused a step; the message names the step and the answer."""


@dataclass
class Enterprise:
    """A signed-in site user of one site."""

    client: httpx.Client
    site: str
    csrf: str

    def post(self, step: str, path: str, **kw: object) -> dict[str, object]:
        r = self.client.post(f"/api/v1{path}", headers={"X-CSRF-Token": self.csrf}, **kw)  # type: ignore[arg-type]
        if r.status_code not in (200, 201):
            raise HazardScenarioError(f"{step}: {r.status_code} {r.text[:200]}")
        out: dict[str, object] = r.json()
        return out


def sign_in_enterprise(api: str, admin_token: str, site: str, timeout: float = 10.0) -> Enterprise:
    """Creates a site user for ``site`` (admin API) and signs it in; raises HazardScenarioError."""
    username = f"ent-{site.lower()}-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    admin = {"Authorization": f"Bearer {admin_token}"}
    r = httpx.post(f"{api}/api/v1/users", headers=admin, timeout=timeout,
                   json={"username": username, "role": "site", "sites": [site], "password": password})
    if r.status_code != 201:
        raise HazardScenarioError(f"creating the site user for {site}: {r.status_code} {r.text[:200]}")
    client = httpx.Client(base_url=api, timeout=timeout)
    r = client.post("/api/v1/session", json={"username": username, "password": password})
    if r.status_code != 200:
        client.close()
        raise HazardScenarioError(f"signing in as {username}: {r.status_code} {r.text[:200]}")
    return Enterprise(client, site, str(r.json()["csrf_token"]))


def _plan(deadline: datetime, measures: str) -> dict[str, object]:
    return {"measures": measures, "owner": "安全负责人 张明", "funds": "3万元（年度安全专项）",
            "deadline": deadline.isoformat(), "contingency": "整改期间设警戒区、专人值守，按应急预案疏散"}


def self_report(ent: Enterprise, district: District) -> str:
    """The whole rectification up to review; returns the hazard id."""
    name = district.sites[ent.site].name
    h = ent.post("self-report", "/hazards", json={"site": ent.site, "title": f"{name}: 消防通道被货物占用",
                                                  "description": "自查发现：东侧消防通道堆放纸箱"})
    hid = str(h["id"])
    deadline = datetime.fromisoformat(str(h["deadline"])) - timedelta(minutes=1)
    ent.post("plan", f"/hazards/{hid}/plan", json=_plan(deadline, "清走通道内货物，划线禁停，每日巡查"))
    ent.post("progress", f"/hazards/{hid}/progress", json={"note": "纸箱已清走一半"})
    ent.post("evidence", f"/hazards/{hid}/attachments", files={"file": ("通道照片.png", PHOTO, "image/png")})
    ent.post("submit", f"/hazards/{hid}/submit", json={"note": "通道已清空，请复查"})
    return hid


def overdue_climb(ent: Enterprise, district: District, limit_s: float = 30.0) -> str:
    """A hazard whose plan promises a fix within ``limit_s`` that never comes; returns its id."""
    name = district.sites[ent.site].name
    h = ent.post("overdue-climb", "/hazards", json={"site": ent.site, "title": f"{name}: 应急照明失效",
                                                    "description": "自查发现：地下一层应急照明不亮"})
    hid = str(h["id"])
    ent.post("plan", f"/hazards/{hid}/plan",
             json=_plan(datetime.now(UTC) + timedelta(seconds=limit_s), "更换应急照明灯具并做断电测试"))
    return hid


def run_hazard_scenario(name: str, api: str, admin_token: str, district: District, site: str) -> str:
    """Plays scenario ``name`` at ``site``; returns the hazard id."""
    if name not in SCENARIOS:
        raise HazardScenarioError(f"unknown hazard scenario {name!r} (expected one of {', '.join(SCENARIOS)})")
    ent = sign_in_enterprise(api, admin_token, site)
    try:
        return self_report(ent, district) if name == "self-report" else overdue_climb(ent, district)
    finally:
        ent.client.close()


def play_in_background(api: str, admin_token: str, district: District, avoid: list[str], stop: threading.Event,
                       on_note: Callable[[str], None], delay_s: float = 20.0) -> threading.Thread:
    """Both scenarios, ``delay_s`` after the start, each at a site the device incidents leave alone
    (``safewatch demo``); what happens is told through ``on_note``."""
    free = [sid for sid in district.sites if sid not in avoid] or list(district.sites)

    def run() -> None:
        if stop.wait(delay_s):
            return
        for name, site in zip(SCENARIOS, free[:1] + free[-1:], strict=False):
            try:
                hid = run_hazard_scenario(name, api, admin_token, district, site)
            except (HazardScenarioError, httpx.HTTPError) as err:
                on_note(f"hazard scenario {name} at {site} failed: {err}")
                continue
            on_note(f"hazard scenario {name} at {site}: hazard {hid}")

    thread = threading.Thread(target=run, name="hazard-scenarios", daemon=True)
    thread.start()
    return thread
