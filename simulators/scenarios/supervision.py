"""Hazard scenarios, played through the HTTP API as the people involved (contract section 10).

Devices cannot report hazards; enterprises do (隐患自查自报, seed item 16). These scenarios sign in
as a site user of the enterprise (an account the admin creates for it) and act through
``/api/v1`` like the console would:

- ``self-report``: the enterprise reports a hazard, files its plan with the five essentials,
  notes progress, uploads a photo and submits it for review;
- ``overdue-climb``: the enterprise reports a hazard and commits to a short time limit in its
  plan, then does nothing: the overdue job marks it past its deadline and reports it up
  (``supervision.overdue``), step by step as the time since the deadline grows.

Both are registered with the device scenarios (``SelfReport``, ``OverdueClimb``: listed by
``safewatch simulate --list-scenarios``, chosen with ``--scenario``) but played by ``ApiPlayer``
over HTTP, never by the devices: ``safewatch simulate --api URL --token TOKEN`` runs them against a
live ``serve``. Like every simulator this speaks only HTTP (httpx) to the API.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import httpx

from domain.district import District
from simulators.scenarios.base import Scenario

# A 1×1 PNG: evidence that passes the API's content check.
PHOTO = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                      "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
SCENARIOS = ("self-report", "overdue-climb")


class HazardScenarioError(RuntimeError):
    """The API refused a step; the message names the step and the answer."""


class ApiScenario(Scenario):
    """A scenario played through the HTTP API as the enterprise, not by the devices: it shapes no
    reading, and ``ApiPlayer`` plays it at its start (simulated seconds, like the others)."""

    family: ClassVar[str | None] = None  # any site: enterprises of every family report hazards
    via_api: ClassVar[bool] = True


class SelfReport(ApiScenario):
    name = "self-report"
    summary = ("the enterprise self-reports a hazard, files its plan, notes progress, uploads a photo "
               "and submits it for review (HTTP API: --api)")


class OverdueClimb(ApiScenario):
    name = "overdue-climb"
    summary = ("the enterprise reports a hazard, promises a fix within 30 s and does nothing: "
               "overdue, reported up step by step (HTTP API: --api)")


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


def run_hazard_scenario(name: str, api: str, admin_token: str, district: District, site: str,
                        limit_s: float = 30.0) -> str:
    """Plays scenario ``name`` at ``site`` (``limit_s``: overdue-climb's promised time limit);
    returns the hazard id."""
    if name not in SCENARIOS:
        raise HazardScenarioError(f"unknown hazard scenario {name!r} (expected one of {', '.join(SCENARIOS)})")
    ent = sign_in_enterprise(api, admin_token, site)
    try:
        return self_report(ent, district) if name == "self-report" else overdue_climb(ent, district, limit_s)
    finally:
        ent.client.close()


def check_api(api: str, admin_token: str, timeout: float = 10.0) -> None:
    """Raises HazardScenarioError unless the API answers and ``admin_token`` is the admin's (the
    scenarios create the enterprise's account)."""
    try:
        r = httpx.get(f"{api}/api/v1/users", headers={"Authorization": f"Bearer {admin_token}"}, timeout=timeout)
    except httpx.HTTPError as err:
        raise HazardScenarioError(f"cannot reach the API at {api}: {type(err).__name__}: {err}") from None
    if r.status_code in (401, 403):
        raise HazardScenarioError(f"the API at {api} refused the token ({r.status_code}): "
                                  "the hazard scenarios need the admin token")
    if r.status_code != 200:
        raise HazardScenarioError(f"the API at {api} answered GET /api/v1/users with {r.status_code}")


@dataclass
class ApiPlayer:
    """Plays ``scenarios`` on a thread of its own, each at its start (``start_s / speed`` real
    seconds after ``start()``); ``finish()`` skips those not begun yet and returns the failures."""

    api: str
    admin_token: str
    district: District
    scenarios: Sequence[ApiScenario]
    on_note: Callable[[str], None]
    speed: float = 1.0
    failures: list[str] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ApiPlayer:
        self._thread = threading.Thread(target=self._run, name="hazard-scenarios", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        for sc in sorted(self.scenarios, key=lambda sc: sc.start_s):
            wait = t0 + sc.start_s / self.speed - time.monotonic()
            if wait > 0 and self._done.wait(wait):
                self.on_note(f"hazard scenario {sc.label} not played: the run ended before its start")
                continue
            try:
                hid = run_hazard_scenario(sc.name, self.api, self.admin_token, self.district, sc.site.id)
            except (HazardScenarioError, httpx.HTTPError) as err:
                self.failures.append(f"hazard scenario {sc.label}: {err}")
                self.on_note(self.failures[-1])
                continue
            self.on_note(f"hazard scenario {sc.label}: hazard {hid} ({self.api}/api/v1/hazards/{hid})")

    def finish(self, timeout: float = 60.0) -> list[str]:
        """Waits for a scenario under way (each is a few HTTP calls) and skips the rest."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.failures.append(f"hazard scenarios: still running after {timeout:g} s; given up")
        return self.failures


def play_in_background(api: str, admin_token: str, district: District, avoid: list[str], stop: threading.Event,
                       on_note: Callable[[str], None], delay_s: float = 20.0,
                       limit_s: float = 30.0) -> threading.Thread:
    """Both scenarios, ``delay_s`` after the start, each at a site the device incidents leave alone
    (``safewatch demo``); what happens is told through ``on_note``."""
    free = [sid for sid in district.sites if sid not in avoid] or list(district.sites)

    def run() -> None:
        if stop.wait(delay_s):
            return
        for name, site in zip(SCENARIOS, free[:1] + free[-1:], strict=False):
            try:
                hid = run_hazard_scenario(name, api, admin_token, district, site, limit_s)
            except (HazardScenarioError, httpx.HTTPError) as err:
                on_note(f"hazard scenario {name} at {site} failed: {err}")
                continue
            on_note(f"hazard scenario {name} at {site}: hazard {hid}")

    thread = threading.Thread(target=run, name="hazard-scenarios", daemon=True)
    thread.start()
    return thread
