"""The hazard as the API, the webhooks, MQTT and SSE show it (contract section 10).

Times are RFC 3339 with the district's offset and milliseconds, formatted by the same function
as alert bodies (``notify.payload.rfc3339``).
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from domain.hazards import Attachment, Hazard, HazardEvent, Plan
from notify.payload import rfc3339 as rfc3339  # re-exported: supervision.reports formats with it


def plan_json(p: Plan, tz: tzinfo) -> dict[str, Any]:
    return {"measures": p.measures, "owner": p.owner, "funds": p.funds,
            "deadline": rfc3339(p.deadline, tz), "contingency": p.contingency}


def hazard_event_json(e: HazardEvent, tz: tzinfo) -> dict[str, Any]:
    return {"id": e.id, "type": e.type.value, "at": rfc3339(e.at, tz), "by": e.by, "note": e.note,
            "attachment": e.attachment, "departments": list(e.departments)}


def hazard_json(h: Hazard, tz: tzinfo, tail: int | None = None) -> dict[str, Any]:
    """The contract's hazard shape, plus ``rule`` and ``updated_at``; with the last ``tail`` events
    (all of them when None, as the API shows a hazard; notifications pass ``notify.EVENTS_TAIL``)."""
    events = h.events if tail is None else h.events[-tail:]
    return {
        "id": h.id, "site": h.site, "family": h.family, "street": h.street, "sector": h.sector,
        "title": h.title, "description": h.description, "level": h.level.value, "source": h.source.value,
        "rule": h.rule, "alert_ids": list(h.alert_ids), "state": h.state.value,
        "listed_at": rfc3339(h.listed_at, tz), "deadline": rfc3339(h.deadline, tz), "overdue": h.overdue,
        "plan": None if h.plan is None else plan_json(h.plan, tz), "departments": list(h.departments),
        "events": [hazard_event_json(e, tz) for e in events],
        "closed_at": None if h.closed_at is None else rfc3339(h.closed_at, tz),
        "updated_at": None if h.updated_at is None else rfc3339(h.updated_at, tz),
    }


def attachment_json(a: Attachment, tz: tzinfo) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "type": a.type, "size": a.size, "sha256": a.sha256,
            "at": rfc3339(a.at, tz), "by": a.by}
