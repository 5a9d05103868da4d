"""The notification body (contract section 6), shared by webhooks, MQTT and the SSE stream.

Times are RFC 3339 with the district's offset (``2025-01-01T08:00:00.000+08:00``): the
people reading them are in that zone, and the offset keeps them unambiguous for machines.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

import orjson

from domain.alerts import Alert, AlertEvent


def rfc3339(dt: datetime, tz: tzinfo) -> str:
    return dt.astimezone(tz).isoformat(timespec="milliseconds")


def event_json(e: AlertEvent, tz: tzinfo) -> dict[str, Any]:
    return {
        "id": e.id, "type": e.type.value, "at": rfc3339(e.at, tz), "severity": e.severity.label,
        "value": e.value, "by": e.by, "note": e.note, "departments": list(e.departments),
    }


def alert_json(a: Alert, tz: tzinfo) -> dict[str, Any]:
    """The contract's alert shape (section 5) plus ``street`` and ``flapping``."""
    return {
        "id": a.id, "rule": a.rule, "kind": a.kind, "site": a.site, "family": a.family,
        "device": a.device, "metric": a.metric, "severity": a.severity.label, "state": a.state.value,
        "value": a.value, "threshold": a.threshold, "message": a.message,
        "started_at": rfc3339(a.started_at, tz), "updated_at": rfc3339(a.updated_at, tz),
        "resolved_at": None if a.resolved_at is None else rfc3339(a.resolved_at, tz),
        "closed_at": None if a.closed_at is None else rfc3339(a.closed_at, tz),
        "departments": list(a.departments), "street": a.street, "flapping": a.flapping,
        "events": [event_json(e, tz) for e in a.events],
    }


def notification(event: AlertEvent, alert: Alert, department: str | None, tz: tzinfo) -> dict[str, Any]:
    """``{"event_id", "type", "department", "alert"}``; ``department`` None for the SSE stream."""
    return {"event_id": event.id, "type": event.type.value, "department": department,
            "alert": alert_json(alert, tz)}


def notification_body(event: AlertEvent, alert: Alert, department: str | None, tz: tzinfo) -> bytes:
    """The raw bytes that are signed and sent (orjson: compact UTF-8, NaN as null)."""
    return orjson.dumps(notification(event, alert, department, tz))
