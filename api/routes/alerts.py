"""The alert book as a department sees it: list, one alert, acknowledge, close."""

from __future__ import annotations

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from alerting import AlertNotFound, TransitionError
from api.deps import API_CHECKS, Audit, AuditLog, Caller, Ctx, Operator, Principal, Role, State, sees_alert
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, CONFLICT, FORBIDDEN, NOT_FOUND, UNAVAILABLE
from api.schemas import AlertOut, FamilyName, NoteIn, SeverityName, StateName
from domain.alerts import Alert
from domain.severity import Severity
from store.state import StateStore

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)


@router.get("", response_model=list[AlertOut])
def list_alerts(
    ctx: Ctx, caller: Caller, state: State,
    state_: StateName | None = Query(None, alias="state"),
    site: str | None = Query(None, max_length=64),
    family: FamilyName | None = None,
    severity_at_least: SeverityName | None = None,
    department: str | None = Query(None, max_length=64, description="routed to this department"),
    since: AwareDatetime | None = Query(None, description="started at or after (RFC 3339)"),
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = Query(None, max_length=32, description="an alert id: page to older alerts"),
) -> list[AlertOut]:
    """Alerts routed to the caller (a site user: of its sites), newest first, without their events."""
    sites: list[str | None] = [site]
    if caller.role is Role.SITE:
        # one query per own site, merged: site users have a handful of sites at most
        sites = [s for s in sorted(caller.sites) if site in (None, s)]
    elif caller.department is not None:
        if department not in (None, caller.department):
            return []  # another department's alerts are not the caller's to see
        department = caller.department
    alerts: list[Alert] = []
    try:
        for one in sites:
            alerts += state.list_alerts(
                state=state_, site=one, family=family, department=department, since=since, limit=limit,
                before=before,
                severity_at_least=None if severity_at_least is None else Severity.parse(severity_at_least))
    except ValueError as err:
        raise ApiError(422, f"query {err}") from None
    if len(sites) > 1:
        alerts = sorted(alerts, key=lambda a: int(a.id), reverse=True)[:limit]
    tz = ctx.district.tz
    return [AlertOut.of(a, tz) for a in alerts]


@router.get("/{alert_id}", response_model=AlertOut, responses=NOT_FOUND)
def get_alert(alert_id: str, ctx: Ctx, caller: Caller, state: State) -> AlertOut:
    """One alert with its events, oldest first."""
    alert = state.get_alert(alert_id)
    if alert is None or not sees_alert(caller, alert):
        raise ApiError(404, f"alert {alert_id!r} not found")
    return AlertOut.of(alert, ctx.district.tz)


def _writable(state: StateStore, caller: Principal, alert_id: str) -> Alert:
    alert: Alert | None = state.get_alert(alert_id, with_events=False)
    if alert is None:
        raise ApiError(404, f"alert {alert_id!r} not found")
    if not sees_alert(caller, alert):
        raise ApiError(403, f"alert {alert_id} is not routed to department {caller.department!r}")
    return alert


WRITE_RESPONSES = NOT_FOUND | FORBIDDEN | CONFLICT | BAD_BODY | UNAVAILABLE


@router.post("/{alert_id}/ack", response_model=AlertOut, responses=WRITE_RESPONSES)
def ack_alert(alert_id: str, ctx: Ctx, caller: Operator, state: State, audit: Audit,
              body: NoteIn | None = None) -> AlertOut:
    """Acknowledge an open alert (open → acknowledged), recording who and why (operators, admin)."""
    return _transition(ctx, caller, state, audit, alert_id, "ack", body)


@router.post("/{alert_id}/close", response_model=AlertOut, responses=WRITE_RESPONSES)
def close_alert(alert_id: str, ctx: Ctx, caller: Operator, state: State, audit: Audit,
                body: NoteIn | None = None) -> AlertOut:
    """Close an alert in any state but closed: the rectification is confirmed (销账; operators, admin)."""
    return _transition(ctx, caller, state, audit, alert_id, "close", body)


def _transition(ctx: Ctx, caller: Principal, state: StateStore, audit: AuditLog, alert_id: str, action: str,
                body: NoteIn | None) -> AlertOut:
    if ctx.alerts is None:
        raise ApiError(503, "the alert service is not running in this process")
    alert = _writable(state, caller, alert_id)
    note = None if body is None else body.note
    if action == "close" and (hazard := state.open_hazard_of_alert(alert.id)) is not None:
        raise ApiError(409, f"alert {alert.id} is on hazard {hazard.id} ({hazard.state.value}): "
                            "the hazard's verification closes it")
    act = ctx.alerts.ack if action == "ack" else ctx.alerts.close
    try:
        changed = act(alert.id, caller.actor, note)
    except TransitionError as err:
        raise ApiError(409, str(err)) from None
    except AlertNotFound:
        raise ApiError(404, f"alert {alert_id!r} not found") from None
    audit.record(f"alert.{action}", f"alert:{alert.id}", (note or "")[:200])
    return AlertOut.of(changed, ctx.district.tz)  # the alert after the change, with all its events
