"""What the state database hands out besides the domain's Alert and AlertEvent.

Frozen dataclasses, detached from SQLAlchemy sessions, so callers (the API, the alerting
side) never hold a live row. Ids are strings on the outside, like alert ids, because the
API puts them in paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from domain.alerts import Alert
from domain.severity import Severity

CHANNELS = ("webhook", "mqtt")


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(dt: datetime) -> int:
    """Epoch ms; a naive datetime is taken as UTC (the API should hand aware ones)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Tracking:
    """Book-keeping the lifecycle needs beside the public alert shape.

    ``reopen_ms`` keeps the recent reopen times (flapping detection); ``reached_ms`` maps a
    severity (int) to when the alert first reached it in its current open period (the base of
    escalation timers); ``escalations_done`` lists the escalation steps (indexes into the
    config's ``escalation`` list) already taken.
    """

    reopen_count: int = 0
    reopen_ms: tuple[int, ...] = ()
    reached_ms: Mapping[int, int] = field(default_factory=dict)
    escalations_done: tuple[int, ...] = ()
    acknowledged_ms: int | None = None
    acknowledged_by: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One alert as the lifecycle reads and writes it: the public shape plus its tracking."""

    alert: Alert
    track: Tracking


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where a department wants its notifications; ``url`` is a topic for channel ``mqtt``."""

    id: str
    department: str
    channel: str  # webhook | mqtt
    url: str
    secret: str
    min_severity: Severity
    families: tuple[str, ...]
    streets: tuple[str, ...]
    sites: tuple[str, ...]
    created_at: datetime
    admin_scope: bool = False  # made by the admin: an mqtt topic anywhere under {district}/alerts/

    def matches(self, severity: Severity | None, family: str, street: str, site: str) -> bool:
        """Empty filters match everything, as in the contract's subscription body; a ``severity``
        of None (hazard events) is not filtered by ``min_severity``."""
        return (
            (severity is None or severity >= self.min_severity)
            and (not self.families or family in self.families)
            and (not self.streets or street in self.streets)
            and (not self.sites or site in self.sites)
        )


@dataclass(frozen=True, slots=True)
class Silence:
    """Holds back ``department``'s notifications (everyone's when None) for a site, until ``until``."""

    id: str
    department: str | None
    created_by: str
    site: str
    metric: str | None
    until: datetime
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One notification to deliver: an event for one department through one target.

    ``target`` is the FIFO key of the receiver (``sub:<id>`` for a subscription, ``topic:<topic>``
    for the contract's per-department MQTT topic); rows of one target are delivered in id order.
    It is only compared: the receiver itself is ``target_kind`` with ``subscription_id`` or
    ``topic``. ``event_key`` is the event id as the body carries it; ``event_id`` and
    ``alert_id`` are set for alert events only.
    """

    id: int
    event_key: str
    subject: str  # alert | hazard
    subject_id: str
    event_id: int | None
    alert_id: str | None
    subscription_id: str | None
    channel: str
    target_kind: str  # subscription | topic
    target: str
    department: str
    site: str
    metric: str | None
    attempts: int
    next_attempt_ms: int
    status: str  # pending | delivered | failed | silenced | dropped
    last_error: str | None
    delivered_ms: int | None
    created_ms: int
    payload: bytes
    topic: str | None = None  # target_kind topic: the MQTT topic


@dataclass(frozen=True, slots=True)
class NewOutbox:
    """An outbox row to add with its event (same transaction); built by ``notify``'s planner."""

    event_key: str
    subject: str
    subject_id: str
    channel: str
    target_kind: str
    target: str
    department: str
    site: str
    metric: str | None
    payload: bytes
    event_id: int | None = None  # alert events: the alert_events row
    subscription_id: str | None = None
    topic: str | None = None  # target_kind topic: the MQTT topic
