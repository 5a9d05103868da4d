"""Supervision rows ↔ the domain's Hazard, HazardEvent, Plan and Attachment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from domain.hazards import (
    Attachment,
    Hazard,
    HazardEvent,
    HazardEventType,
    HazardLevel,
    HazardSource,
    HazardState,
    Plan,
)
from store.state.models_supervision import AttachmentRow, HazardEventRow, HazardRow
from store.state.records import dt_to_ms, ms_to_dt


def plan_json(plan: Plan) -> dict[str, Any]:
    return {"measures": plan.measures, "owner": plan.owner, "funds": plan.funds,
            "deadline_ms": dt_to_ms(plan.deadline), "contingency": plan.contingency}


def plan_of(data: dict[str, Any] | None) -> Plan | None:
    if not data:
        return None
    return Plan(measures=str(data["measures"]), owner=str(data["owner"]), funds=str(data["funds"]),
                deadline=ms_to_dt(int(data["deadline_ms"])), contingency=str(data["contingency"]))


def hazard_event_of(row: HazardEventRow) -> HazardEvent:
    return HazardEvent(
        id=row.id, hazard_id=str(row.hazard_id), type=HazardEventType(row.type), at=ms_to_dt(row.at_ms),
        by=row.actor, note=row.note,
        attachment=None if row.attachment_id is None else str(row.attachment_id),
        departments=tuple(row.departments or ()),
    )


def hazard_of(row: HazardRow, alert_ids: Iterable[int] = (),
              events: Iterable[HazardEventRow] = ()) -> Hazard:
    return Hazard(
        id=str(row.id), site=row.site, family=row.family, street=row.street, sector=row.sector,
        title=row.title, description=row.description, level=HazardLevel(row.level),
        source=HazardSource(row.source), state=HazardState(row.state), listed_at=ms_to_dt(row.listed_ms),
        deadline=ms_to_dt(row.deadline_ms), overdue=bool(row.overdue), rule=row.rule,
        alert_ids=tuple(str(a) for a in sorted(alert_ids)), plan=plan_of(row.plan),
        departments=tuple(row.departments or ()),
        closed_at=None if row.closed_ms is None else ms_to_dt(row.closed_ms),
        updated_at=ms_to_dt(row.updated_ms), events=tuple(hazard_event_of(e) for e in events),
    )


def fill_hazard(row: HazardRow, h: Hazard, now: datetime) -> None:
    """Copies the mutable fields of ``h`` onto ``row`` (departments rows are the caller's)."""
    row.title, row.description = h.title, h.description
    row.level, row.state, row.overdue = h.level.value, h.state.value, h.overdue
    row.deadline_ms = dt_to_ms(h.deadline)
    row.plan = None if h.plan is None else plan_json(h.plan)
    row.departments = list(h.departments)
    row.closed_ms = None if h.closed_at is None else dt_to_ms(h.closed_at)
    row.updated_ms = dt_to_ms(now)


def attachment_of(row: AttachmentRow, with_data: bool = False) -> Attachment:
    return Attachment(id=str(row.id), hazard_id=str(row.hazard_id), name=row.name, type=row.type,
                      size=row.size, sha256=row.sha256, at=ms_to_dt(row.created_ms), by=row.created_by,
                      data=bytes(row.data) if with_data else None)
