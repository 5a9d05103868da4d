"""Alerts as the book keeps them and the API shows them (contract section 5)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from domain.severity import Severity


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


class EventType(enum.StrEnum):
    FIRED = "fired"
    SEVERITY_CHANGED = "severity_changed"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class AlertKey:
    """One alert at a time per key; ``device`` is ``""`` for per-site rules and ``metric`` for deadman."""

    rule: str
    site: str
    device: str
    metric: str


@dataclass(frozen=True, slots=True)
class Signal:
    """What the engine concludes about a key: it fires at ``severity``, or it has cleared.

    The engine emits a ``fire`` signal when a key starts firing and each time its severity
    changes, and ``clear`` when it stops; the alert lifecycle turns these into book events.
    """

    key: AlertKey
    family: str
    kind: str  # rule kind: threshold | trend | deadman
    firing: bool
    at_ms: int  # event time of the reading (or sweep) that decided it
    severity: Severity | None = None  # None on clear
    value: float | None = None
    threshold: float | None = None
    message: str = ""

    @classmethod
    def fire(cls, key: AlertKey, *, family: str, kind: str, at_ms: int, severity: Severity,
             value: float | None = None, threshold: float | None = None, message: str = "") -> Signal:
        """The key fires (or moves) at ``severity``."""
        return cls(key, family, kind, True, at_ms, severity, value, threshold, message)

    @classmethod
    def clear(cls, key: AlertKey, *, family: str, kind: str, at_ms: int, value: float | None = None,
              message: str = "") -> Signal:
        """The key's condition has cleared."""
        return cls(key, family, kind, False, at_ms, None, value, None, message)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: int  # global, increasing: SSE ids, webhook event ids and Last-Event-ID resumption use it
    alert_id: str
    type: EventType
    at: datetime
    severity: Severity
    value: float | None = None
    by: str | None = None  # "engine", "scheduler", "admin" or the acting department id
    note: str | None = None
    departments: tuple[str, ...] = ()  # departments added by this event (fired, escalated)


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    rule: str
    kind: str
    site: str
    family: str
    device: str
    metric: str
    severity: Severity
    state: AlertState
    value: float | None
    threshold: float | None
    message: str
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    departments: tuple[str, ...] = ()
    street: str = ""
    flapping: bool = False
    events: tuple[AlertEvent, ...] = field(default=())

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.rule, self.site, self.device, self.metric)
