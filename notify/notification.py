"""``Notification``: one outbox row as the delivery stages and channels see it (typed, no JSON)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from notify.notice import Target, target_of
from store.state.records import OutboxItem, Subscription


@dataclass(frozen=True, slots=True)
class Notification:
    row_id: int
    event_key: str  # the body's event_id as text: X-Safewatch-Event-Id
    subject: str  # alert | hazard
    subject_id: str
    channel: str
    target: Target
    department: str
    site: str
    metric: str | None
    payload: bytes  # the exact bytes to sign and send
    attempts: int
    created_ms: int
    subscription: Subscription | None = None  # filled by the subscription stage

    @classmethod
    def of(cls, item: OutboxItem) -> Notification:
        return cls(row_id=item.id, event_key=item.event_key, subject=item.subject, subject_id=item.subject_id,
                   channel=item.channel, target=target_of(item.target_kind, item.target),
                   department=item.department, site=item.site, metric=item.metric, payload=item.payload,
                   attempts=item.attempts, created_ms=item.created_ms)

    def with_subscription(self, sub: Subscription) -> Notification:
        return replace(self, subscription=sub)
