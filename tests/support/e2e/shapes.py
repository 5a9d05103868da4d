"""The contract's shapes (section 5 alert, section 6 webhook), checked key by key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.support.e2e.webhooks import Delivery

ALERT_KEYS = {"id", "rule", "kind", "site", "family", "device", "metric", "severity", "state", "value",
              "threshold", "message", "started_at", "updated_at", "resolved_at", "closed_at", "departments",
              "events"}
EVENT_KEYS = {"type", "at", "severity", "value", "by", "note"}
WEBHOOK_KEYS = {"event_id", "type", "department", "alert"}
SEVERITIES = ("blue", "yellow", "orange", "red")
STATES = ("open", "acknowledged", "resolved", "closed")
EVENT_TYPES = ("fired", "severity_changed", "escalated", "acknowledged", "resolved", "reopened", "closed")


def rfc3339(value: Any, what: str) -> datetime:
    assert isinstance(value, str), f"{what}={value!r}: expected an RFC 3339 string"
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{what}={value!r}: RFC 3339 needs an offset"
    return parsed


def check_alert(alert: dict[str, Any], with_events: bool = True) -> None:
    missing = ALERT_KEYS - set(alert)
    assert not missing, f"alert {alert.get('id')} lacks {sorted(missing)}"
    assert alert["severity"] in SEVERITIES and alert["state"] in STATES
    assert isinstance(alert["departments"], list) and all(isinstance(x, str) for x in alert["departments"])
    for key in ("started_at", "updated_at"):
        rfc3339(alert[key], key)
    for key in ("resolved_at", "closed_at"):
        if alert[key] is not None:
            rfc3339(alert[key], key)
    if with_events:
        assert alert["events"], f"alert {alert['id']} has no events"
    for e in alert["events"]:
        assert set(e) >= EVENT_KEYS, f"event {e} lacks {sorted(EVENT_KEYS - set(e))}"
        assert e["type"] in EVENT_TYPES, e
        rfc3339(e["at"], "event at")


def check_webhook(d: Delivery, department: str, secret: str) -> dict[str, Any]:
    assert d.headers.get("content-type", "").startswith("application/json"), d.headers
    assert d.signature_ok(secret), f"bad X-Safewatch-Signature {d.headers.get('x-safewatch-signature')!r}"
    body = d.json
    assert set(body) >= WEBHOOK_KEYS, f"webhook body lacks {sorted(WEBHOOK_KEYS - set(body))}"
    # The contract leaves the id's JSON type open; a header is text, so compare as text.
    assert d.headers.get("x-safewatch-event-id") == str(body["event_id"]), \
        f"X-Safewatch-Event-Id {d.headers.get('x-safewatch-event-id')!r} != body event_id {body['event_id']!r}"
    assert body["department"] == department and body["type"] in EVENT_TYPES
    check_alert(body["alert"], with_events=False)
    return body


def event_types(alert: dict[str, Any]) -> list[str]:
    return [e["type"] for e in alert["events"]]
