"""Alert bodies (contract sections 5 and 6), shared by webhooks, MQTT and the SSE stream.

Times are RFC 3339 with the district's offset (``2025-01-01T08:00:00.000+08:00``): the
people reading them are in that zone, and the offset keeps them unambiguous for machines.
A notification carries only the last ``EVENTS_TAIL`` events of its alert, so a long alert's
notifications do not grow with every transition (``GET /api/v1/alerts/{id}`` has them all);
hazard bodies (``supervision.json``) take the same tail and format times with ``rfc3339``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from domain.alerts import Alert, AlertEvent
from notify.notice import Notice

EVENTS_TAIL = 20


def rfc3339(dt: datetime, tz: tzinfo) -> str:
    return dt.astimezone(tz).isoformat(timespec="milliseconds")


def event_json(e: AlertEvent, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": e.id, "type": e.type.value, "at": rfc3339(e.at, tz), "severity": e.severity.label,
        "value": e.value, "by": e.by, "note": e.note, "departments": list(e.departments),
    }


def alert_json(a: Alert, tz: tzinfo, tail: int | None = EVENTS_TAIL) -> dict[str, Any]:
    """The contract's alert shape (section 5) plus ``street`` and ``flapping``; with the last
    ``tail`` events (all of them when None)."""
    events = a.events if tail is None else a.events[-tail:]
    return {
        "id": a.id, "rule": a.rule, "kind": a.kind, "site": a.site, "family": a.family,
        "device": a.device, "metric": a.metric, "severity": a.severity.label, "state": a.state.value,
        "value": a.value, "threshold": a.threshold, "message": a.message,
        "started_at": rfc3339(a.started_at, tz), "updated_at": rfc3339(a.updated_at, tz),
        "resolved_at": None if a.resolved_at is None else rfc3339(a.resolved_at, tz),
        "closed_at": None if a.closed_at is None else rfc3339(a.closed_at, tz),
        "departments": list(a.departments), "street": a.street, "flapping": a.flapping,
        "events": [event_json(e, tz) for e in events],
    }


def alert_topic(district: str, department: str, severity: str) -> str:
    """The contract's MQTT topic of a department's alert events (section 3)."""
    return f"{district}/alerts/{department}/{severity}"


def hazard_topic(district: str, department: str, level: str) -> str:
    """The MQTT topic of a department's hazard events (section 10)."""
    return f"{district}/hazards/{department}/{level}"


def alert_notice(event: AlertEvent, alert: Alert, tz: tzinfo, topics: Mapping[str, str] | None = None) -> Notice:
    """The notice of one alert event, to every department on the alert at that moment."""
    body = {"event_id": event.id, "type": event.type.value, "alert": alert_json(alert, tz)}
    return Notice(subject="alert", subject_id=alert.id, event_id=event.id, type=event.type.value, body=body,
                  departments=alert.departments, site=alert.site, family=alert.family, street=alert.street,
                  metric=alert.metric, severity=alert.severity, topics=topics or {})


def notification_body(event: AlertEvent, alert: Alert, department: str | None, tz: tzinfo) -> bytes:
    """The raw bytes of one alert event's body for ``department`` (compact UTF-8, NaN as null)."""
    return alert_notice(event, alert, tz).payload(department)
