"""Deadman (contract section 2): silence for `after`, or an `offline` status, raises an alert;
the device's next reading resolves it."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Deployment
from tests.support.e2e.clients import Api, wait_equal
from tests.support.e2e.district import DEADMAN_AFTER_S
from tests.support.helpers import wait_until

UG, RULE = "underground", "ug-silent"
SWEEP_S = 5.0  # the implementation's sweep period; the contract leaves it open
SLACK_S = 6.0  # a busy 2-core machine


def deadman(api: Api, site: str) -> dict[str, Any] | None:
    return api.only_alert(site, RULE)


def test_silent_device_raises_deadman_then_reading_resolves_it(deployment: Deployment) -> None:
    api, d, site = deployment.api, deployment.devices, "UG-DM1"
    sent = time.monotonic()
    d.send(UG, site, "gas-1", {"co_ppm": 3.0, "o2_pct": 20.9})
    time.sleep(1.0)
    assert deadman(api, site) is None, "deadman fired while the device was still fresh"
    wait_until(lambda: deadman(api, site) is not None, DEADMAN_AFTER_S + SWEEP_S + SLACK_S,
               f"deadman alert at {site} after {DEADMAN_AFTER_S:g}s of silence", interval=0.2)
    took = time.monotonic() - sent
    alert = deadman(api, site)
    assert alert is not None
    assert took >= DEADMAN_AFTER_S - 0.5, f"deadman after {took:.1f}s, before `after` ({DEADMAN_AFTER_S:g}s)"
    assert (alert["kind"], alert["device"], alert["severity"], alert["state"]) == ("deadman", "gas-1", "yellow", "open")
    assert set(alert["departments"]) == {"civil", "office_a"}

    d.send(UG, site, "gas-1", {"co_ppm": 3.0})
    wait_until(lambda: (deadman(api, site) or {}).get("state") == "resolved", 10, "deadman resolved by a reading")
    wait_equal(lambda: deployment.hooks.types("/hook/civil", alert["id"]), ["fired", "resolved"], 15,
               "civil's webhooks")


def test_offline_status_raises_deadman_at_once(deployment: Deployment) -> None:
    api, d, site = deployment.api, deployment.devices, "UG-DM2"
    d.send(UG, site, "gas-2", {"co_ppm": 2.0})
    d.status(UG, site, "gas-2", "offline")  # a last will, just after a fresh reading
    sent = time.monotonic()
    wait_until(lambda: deadman(api, site) is not None, DEADMAN_AFTER_S - 1.0, "deadman on an offline status",
               interval=0.1)
    alert = deadman(api, site)
    assert alert is not None and alert["device"] == "gas-2" and alert["state"] == "open"
    assert time.monotonic() - sent < DEADMAN_AFTER_S

    d.status(UG, site, "gas-2", "online")
    d.send(UG, site, "gas-2", {"co_ppm": 2.0})
    wait_until(lambda: (deadman(api, site) or {}).get("state") == "resolved", 10, "deadman resolved by a reading")
