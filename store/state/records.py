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

    def matches(self, severity: Severity, family: str, street: str, site: str) -> bool:
        """Empty filters match everything, as in the contract's subscription body."""
        return (
            severity >= self.min_severity
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

    ``target`` names the receiver (``sub:<id>`` for a subscription, ``topic:<topic>`` for the
    contract's per-department MQTT topic); rows of one target are delivered in id order.
    """

    id: int
    event_id: int
    alert_id: str
    subscription_id: str | None
    channel: str
    target: str
    department: str
    attempts: int
    next_attempt_ms: int
    status: str  # pending | delivered | failed | silenced | dropped
    last_error: str | None
    delivered_ms: int | None
    created_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class NewOutbox:
    """An outbox row to add with an event (same transaction)."""

    event_id: int
    alert_id: str
    subscription_id: str | None
    channel: str
    target: str
    department: str
    payload: bytes
