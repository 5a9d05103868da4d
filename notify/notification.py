"""``Notification``: one outbox row as the delivery stages and channels see it (typed, no JSON),
and its ``Recipient``: what a channel needs of a subscription, resolved at send time."""

from __future__ import annotations

from dataclasses import dataclass, replace

from notify.notice import Target, target_of
from store.state.records import OutboxItem


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where and how a subscription's notification goes, read when it is sent (not when it was
    planned), so a subscription deleted meanwhile drops its rows. ``url`` is the webhook URL, or
    the topic for channel ``mqtt``; ``secret`` signs webhook bodies (empty: signed with an empty
    key); ``department`` and ``admin_scope`` say under which prefix an MQTT topic may be."""

    url: str
    secret: str
    department: str
    admin_scope: bool = False


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
    recipient: Recipient | None = None  # a subscription target's, filled by the DropUnsubscribed stage

    @classmethod
    def of(cls, item: OutboxItem) -> Notification:
        return cls(row_id=item.id, event_key=item.event_key, subject=item.subject, subject_id=item.subject_id,
                   channel=item.channel, target=target_of(item.target_kind, item.subscription_id, item.topic),
                   department=item.department, site=item.site, metric=item.metric, payload=item.payload,
                   attempts=item.attempts, created_ms=item.created_ms)

    def to(self, recipient: Recipient) -> Notification:
        return replace(self, recipient=recipient)
