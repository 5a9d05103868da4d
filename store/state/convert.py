"""ORM rows ↔ the domain's Alert/AlertEvent and the store's records."""

from __future__ import annotations

from collections.abc import Sequence

from domain.alerts import Alert, AlertEvent, AlertState, EventType
from domain.severity import Severity
from store.state.models import AlertRow, EventRow, OutboxRow, SilenceRow, SubscriptionRow
from store.state.records import Entry, OutboxItem, Silence, Subscription, Tracking, ms_to_dt


def event_of(row: EventRow) -> AlertEvent:
    return AlertEvent(
        id=row.id,
        alert_id=str(row.alert_id),
        type=EventType(row.type),
        at=ms_to_dt(row.at_ms),
        severity=Severity(row.severity),
        value=row.value,
        by=row.actor,
        note=row.note,
        departments=tuple(row.departments or ()),
    )


def alert_of(row: AlertRow, events: Sequence[EventRow] = ()) -> Alert:
    return Alert(
        id=str(row.id),
        rule=row.rule,
        kind=row.kind,
        site=row.site,
        family=row.family,
        device=row.device,
        metric=row.metric,
        severity=Severity(row.severity),
        state=AlertState(row.state),
        value=row.value,
        threshold=row.threshold,
        message=row.message,
        started_at=ms_to_dt(row.started_ms),
        updated_at=ms_to_dt(row.updated_ms),
        resolved_at=None if row.resolved_ms is None else ms_to_dt(row.resolved_ms),
        closed_at=None if row.closed_ms is None else ms_to_dt(row.closed_ms),
        departments=tuple(row.departments or ()),
        street=row.street,
        flapping=bool(row.flapping),
        events=tuple(event_of(e) for e in events),
    )


def tracking_of(row: AlertRow) -> Tracking:
    return Tracking(
        reopen_count=row.reopen_count,
        reopen_ms=tuple(row.reopen_ms or ()),
        reached_ms={int(k): int(v) for k, v in (row.reached_ms or {}).items()},
        escalations_done=tuple(row.escalations_done or ()),
        acknowledged_ms=row.acknowledged_ms,
        acknowledged_by=row.acknowledged_by,
    )


def entry_of(row: AlertRow) -> Entry:
    return Entry(alert_of(row), tracking_of(row))


def subscription_of(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=str(row.id),
        department=row.department,
        channel=row.channel,
        url=row.url,
        secret=row.secret,
        min_severity=Severity(row.min_severity),
        families=tuple(row.families or ()),
        streets=tuple(row.streets or ()),
        sites=tuple(row.sites or ()),
        created_at=ms_to_dt(row.created_ms),
        admin_scope=bool(row.admin_scope),
    )


def silence_of(row: SilenceRow) -> Silence:
    return Silence(
        id=str(row.id),
        department=row.department,
        created_by=row.created_by,
        site=row.site,
        metric=row.metric,
        until=ms_to_dt(row.until_ms),
        reason=row.reason,
        created_at=ms_to_dt(row.created_ms),
    )


def outbox_of(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        event_key=row.event_key,
        subject=row.subject,
        subject_id=row.subject_id,
        event_id=row.event_id,
        alert_id=None if row.alert_id is None else str(row.alert_id),
        subscription_id=None if row.subscription_id is None else str(row.subscription_id),
        channel=row.channel,
        target_kind=row.target_kind,
        target=row.target,
        department=row.department,
        site=row.site,
        metric=row.metric,
        attempts=row.attempts,
        next_attempt_ms=row.next_attempt_ms,
        status=row.status,
        last_error=row.last_error,
        delivered_ms=row.delivered_ms,
        created_ms=row.created_ms,
        payload=bytes(row.payload),
        topic=row.topic,
    )


def int_id(value: str | int) -> int | None:
    """An id from a URL path as the integer key, or None when it cannot be one (→ 404, not 500)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # "¹".isdigit() is True
        return None
    return int(text)
