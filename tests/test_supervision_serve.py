"""Supervision in a real ``safewatch serve`` (SQLite and PostgreSQL): an orange reading over MQTT
lists a hazard that the API shows and the broker carries under ``{district}/hazards/...``; its
alert cannot be closed around it; after a SIGKILL and a restart nothing is listed twice and a
second alert of the rule joins the same hazard."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.stack import StackInfo
from tests.support.e2e.clients import Api, Devices
from tests.support.e2e.serve_process import ADMIN_TOKEN, ServeProcess
from tests.support.helpers import cli_subscribe, wait_until
from tests.support.supervision import YAML


def _hazards(api: Api) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.json("GET", "/api/v1/hazards")
    return found


def test_serve_lists_hazards_from_mqtt_readings(stack: StackInfo, state_url: str, tmp_path: Path) -> None:
    name = f"s{uuid.uuid4().hex[:8]}"
    config = yaml.safe_load(YAML)
    config["district"] = name
    path = tmp_path / "district.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    serve = ServeProcess(stack, path, tmp_path)
    serve.env["SAFEWATCH_STATE_URL"] = state_url
    devices = Devices(stack, name)
    got: list[bytes] = []
    try:
        serve.start()
        api = Api(serve.base_url, ADMIN_TOKEN)
        sub = threading.Thread(target=lambda: got.extend(
            cli_subscribe(stack, f"{name}/hazards/trade/#", count=1, timeout=20)))
        sub.start()
        threading.Event().wait(1.0)
        devices.send("gas_station", "S1", "d1", {"vapor_lel": 30.0})  # orange
        wait_until(lambda: len(_hazards(api)) == 1, 20, "a hazard listed from the orange alert")
        (h,) = _hazards(api)
        assert (h["source"], h["level"], h["state"], h["rule"]) == ("alert", "general", "listed", "vapor")
        sub.join(25)
        assert got and orjson.loads(got[0])["hazard"]["id"] == h["id"]
        r = api.request("POST", f"/api/v1/alerts/{h['alert_ids'][0]}/close", json={"note": "x"})
        assert r.status_code == 409
        serve.kill()
        serve.start()
        devices.send("gas_station", "S1", "d2", {"vapor_lel": 31.0})
        wait_until(lambda: len(_hazards(api)[0]["alert_ids"]) == 2, 20, "the second alert joining the hazard")
        assert len(_hazards(api)) == 1
    finally:
        devices.close()
        serve.stop()
