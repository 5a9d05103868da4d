"""Hazards through the HTTP API in-process: ``HazardApi`` is the real AlertService and
SupervisionService (tests/support/supervision.py's district) behind the app, with a principal for
every role (``admin``, department operators and a viewer, site users by cookie) to act as."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alerting.service import AlertService
from api.app import create_app
from api.context import ApiContext
from domain.settings import Settings
from store.state import StateStore
from supervision.service import SupervisionService
from tests.support.supervision import district

ADMIN_TOKEN = "hazard-admin-token"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class HazardApi:
    def __init__(self, state: StateStore) -> None:
        self.state = state
        self.district = district()
        self.alerts = AlertService(self.district, state)
        self.sup = SupervisionService(self.district, state, close_alert=self.alerts.close)
        self.alerts.listeners.append(self.sup.on_changes)
        ctx = ApiContext(district=self.district, settings=Settings(), admin_token=ADMIN_TOKEN,
                         registry=CollectorRegistry(), health=lambda: ("ok", {}), state=state,
                         alerts=self.alerts, supervision=self.sup)
        self.client = TestClient(create_app(ctx))
        self.who: dict[str, dict[str, str]] = {"admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}}
        for name, dep, role in (("sector", "trade", "operator"), ("street", "office_n", "operator"),
                                ("viewer", "trade", "viewer"), ("police", "police", "operator"),
                                ("bureau", "bureau", "operator")):
            self.who[name] = {"Authorization": f"Bearer {state.issue_token(dep, role)}"}
        for name, sites in (("site", ["S1"]), ("other_site", ["S2"])):
            user = state.create_user(username=f"{name}user", role="site", password="long-enough-pw", sites=sites)
            cookie, signed = state.create_session(user)
            self.who[name] = {"Cookie": f"safewatch_session={cookie}", "X-CSRF-Token": signed.csrf_token}

    def post(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.post(f"/api/v1{path}", headers=self.who[who], **kw)

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.who[who], **kw)

    def hazard_in(self, state: str) -> str:
        """A new S1 hazard taken by the admin to ``state``."""
        r = self.post("admin", "/hazards", json={"site": "S1", "title": "消防通道堵塞"})
        assert r.status_code == 201, r.text
        hid = r.json()["id"]
        steps = {"listed": [], "rectifying": ["plan"], "review": ["plan", "submit"],
                 "closed": ["plan", "submit", "accept"]}[state]
        for step in steps:
            assert self.act("admin", hid, step).status_code == 200
        return str(hid)

    def plan_body(self, hid: str, **over: Any) -> dict[str, Any]:
        h = self.get("admin", f"/hazards/{hid}").json()
        deadline = datetime.fromisoformat(h["deadline"]) - timedelta(hours=1)
        return {"measures": "清理通道", "owner": "王五", "funds": "2000元", "deadline": deadline.isoformat(),
                "contingency": "临时疏散预案", **over}

    def act(self, who: str, hid: str, action: str) -> Any:
        if action == "plan":
            return self.post(who, f"/hazards/{hid}/plan", json=self.plan_body(hid))
        if action == "progress":
            return self.post(who, f"/hazards/{hid}/progress", json={"note": "已清理一半"})
        if action == "submit":
            return self.post(who, f"/hazards/{hid}/submit", json={"note": "整改完成"})
        if action == "attach":
            return self.post(who, f"/hazards/{hid}/attachments", files={"file": ("a.png", PNG, "image/png")})
        accept = action == "accept"
        return self.post(who, f"/hazards/{hid}/verify", json={"accept": accept, "note": "现场核查"})
