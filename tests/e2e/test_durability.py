"""Restarts (contract sections 6 and 7): SIGKILL with an alert open and readings arriving while
serve is down; the book, the outbox and the broker's persistent session carry everything over."""

from __future__ import annotations

import time
from typing import Any

from service.stack import StackInfo
from tests.e2e.conftest import Deployment
from tests.support.e2e.clients import now_ms, wait_equal
from tests.support.e2e.district import DEADMAN_AFTER_S
from tests.support.e2e.shapes import event_types
from tests.support.helpers import influx_rows, wait_until

GS, SITE, RULE = "gas_station", "GS-DUR", "vapor-level"


def points(stack: StackInfo, db: str) -> list[dict[str, Any]]:
    return influx_rows(stack, db, f"SELECT * FROM \"{GS}\" WHERE \"site\" = '{SITE}'")


def test_sigkill_keeps_alert_readings_and_notifications(stack: StackInfo, deployment: Deployment) -> None:
    api, d, hooks, serve = deployment.api, deployment.devices, deployment.hooks, deployment.serve
    hooks.fail_first["/hook/trade"] = 3  # trade's receiver is down for its first three attempts
    t0 = now_ms() - 30_000
    d.send(GS, SITE, "det-1", {"vapor_lel": 30.0}, ts=t0)  # orange
    before = api.wait_alert(SITE, RULE, lambda a: a["state"] == "open", "fired")
    wait_until(lambda: len(hooks.deliveries("/hook/trade")) >= 1, 10, "trade's first (failing) attempt")
    # Let serve record that failure (the retry comes after ~1 s): a kill in the middle of a send
    # is the next test's case.
    time.sleep(0.4)
    serve.kill()
    # While serve is down: the vapour eases to yellow (same alert, lower level), and another device
    # keeps reporting.
    down = [("det-1", {"vapor_lel": 31.0}), ("det-1", {"vapor_lel": 22.0}),
            *[("tank-1", {"tank_temp_c": 18.0 + i}) for i in range(3)]]
    for i, (device, values) in enumerate(down, start=1):
        d.send(GS, SITE, device, values, ts=t0 + 1000 * i)
    serve.start()

    wait_until(lambda: len(points(stack, deployment.name)) == 1 + len(down), 30,
               "the readings published while serve was down are in InfluxDB")
    assert sorted(p["time"] for p in points(stack, deployment.name)) == [t0 + 1000 * i for i in range(len(down) + 1)]
    after = api.wait_alert(SITE, RULE, lambda a: a["severity"] == "yellow", "evaluated the readings sent while down")
    assert (after["id"], after["state"]) == (before["id"], "open")
    assert event_types(after) == ["fired", "severity_changed"], f"events after the restart: {event_types(after)}"

    d.send(GS, SITE, "det-1", {"vapor_lel": 1.0}, ts=t0 + 10_000)
    api.wait_alert(SITE, RULE, lambda a: a["state"] == "resolved", "resolved after the restart")
    for dep in ("trade", "office_a", "guard"):
        wait_equal(lambda p=f"/hook/{dep}": hooks.types(p, before["id"]),  # type: ignore[misc]
                   ["fired", "severity_changed", "resolved"], 30, f"{dep}'s webhooks after the restart")
    bodies = [x.json for x in hooks.deliveries()]
    fired_ids = {b["event_id"] for b in bodies if b["type"] == "fired" and b["alert"]["id"] == before["id"]}
    assert len(fired_ids) == 1, f"the restart produced a second fired event: {fired_ids}"
    assert [x.status for x in hooks.deliveries("/hook/trade")][:3] == [500, 500, 500]


def test_sigterm_exits_0_and_the_book_survives(deployment: Deployment) -> None:
    serve, api = deployment.serve, deployment.api
    listed = {a["id"]: a["state"] for a in api.alerts()}
    assert serve.stop() == 0, f"SIGTERM should drain and exit 0; log:\n{serve.log_tail()}"
    serve.start()
    assert {a["id"]: a["state"] for a in api.alerts()} == listed
    # Tokens and subscriptions are in the state database too.
    token = api.token_for("trade")
    serve.stop()
    serve.start()
    assert api.request("GET", "/api/v1/alerts", token).status_code == 200
    assert len(api.json("GET", "/api/v1/subscriptions")) == 5


def test_kill_during_a_webhook_send_delays_it_only_briefly(deployment: Deployment) -> None:
    """A SIGKILL while a receiver is still answering (it will answer 500) leaves that send
    unrecorded; the restarted serve must send it again soon, not after some long lease."""
    api, d, hooks, serve = deployment.api, deployment.devices, deployment.hooks, deployment.serve
    hooks.hold_first["/hook/civil"] = 3.0
    hooks.fail_first["/hook/civil"] = 1
    d.send("underground", "UG-X1", "co-1", {"co_ppm": 80.0})
    alert = api.wait_alert("UG-X1", "co-level", lambda a: a["state"] == "open", "fired")
    wait_until(hooks.holding.is_set, 10, "civil's receiver holding the first send")
    serve.kill()
    serve.start()
    restarted = time.monotonic()
    # 15 s: a webhook timeout (5 s) and a retry or two; the contract wants alerts out at once.
    wait_equal(lambda: hooks.types("/hook/civil", alert["id"]), ["fired"], 15,
               "civil's webhooks within 15 s of the restart")
    print(f"civil's fired arrived {time.monotonic() - restarted:.1f}s after the restart")


def test_deadman_still_watches_devices_after_a_restart(deployment: Deployment) -> None:
    """A device that fell silent around a restart is still missed: the deadman clock must not
    start over with an empty memory of devices."""
    api, serve = deployment.api, deployment.serve
    deployment.devices.send("underground", "UG-DM1", "gas-9", {"co_ppm": 1.0})
    wait_until(lambda: api.json("GET", "/api/v1/sites/UG-DM1").get("latest", {}).get("co_ppm") is not None, 15,
               "UG-DM1's reading taken in")
    assert serve.stop() == 0
    serve.start()
    restarted = time.monotonic()
    wait_until(lambda: api.only_alert("UG-DM1", "ug-silent") is not None, DEADMAN_AFTER_S + 5.0 + 6.0,
               "deadman alert for gas-9 after the restart", interval=0.2)
    print(f"deadman {time.monotonic() - restarted:.1f}s after the restart")
