"""What travels through ``notify``: a ``Notice`` (one event, rendered once) and the typed targets.

A ``Notice`` is made once per event by whoever owns the event (``alerting`` for alert events,
``supervision`` for hazard events). Its ``body`` is the department-free wire body
(``{"event_id", "type", "alert"|"hazard": {...}}``); it is serialised once, at construction,
into the bytes before and after the ``department`` field, so the body for one department (an
outbox row, an SSE frame) is a splice, never a second rendering (contract section 6 keeps the
field order ``event_id, type, department, ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import orjson

from domain.severity import Severity

Subject = Literal["alert", "hazard"]
SUBJECTS: tuple[Subject, ...] = ("alert", "hazard")


@dataclass(frozen=True, slots=True)
class SubscriptionTarget:
    """A subscription's receiver (webhook URL or its own MQTT topic), looked up at send time."""

    id: str
    kind: ClassVar[str] = "subscription"

    @property
    def key(self) -> str:
        """The outbox's FIFO key (its ``target`` column): rows of one key are sent in order, one
        key at a time. Only ever compared, never read back: the row's typed target is built from
        its ``target_kind``, ``subscription_id`` and ``topic`` columns (``target_of``)."""
        return f"sub:{self.id}"


@dataclass(frozen=True, slots=True)
class TopicTarget:
    """The contract's per-department MQTT topic (``{district}/alerts/{department}/{severity}``)."""

    topic: str
    kind: ClassVar[str] = "topic"

    @property
    def key(self) -> str:
        """The outbox's FIFO key; see ``SubscriptionTarget.key``."""
        return f"topic:{self.topic}"


Target = SubscriptionTarget | TopicTarget


def target_of(kind: str, subscription_id: str | None, topic: str | None) -> Target:
    """The typed target of an outbox row, from its ``target_kind``, ``subscription_id`` and
    ``topic`` columns; a row whose kind lacks its column is refused rather than guessed at."""
    if kind == SubscriptionTarget.kind and subscription_id is not None:
        return SubscriptionTarget(subscription_id)
    if kind == TopicTarget.kind and topic is not None:
        return TopicTarget(topic)
    raise ValueError(f"outbox target_kind={kind!r} subscription_id={subscription_id!r} topic={topic!r}: "
                     "not a subscription or topic target")


class Wants(Protocol):
    """A subscription's filters (``store.state.records.Subscription``), as the planner matches them."""

    def matches(self, severity: Severity | None, family: str, street: str, site: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    """A body serialised once, around the place of its ``department`` field."""

    head: bytes  # b'{"event_id":1,"type":"fired","department":'
    tail: bytes  # b',"alert":{...}}'

    def for_department(self, department: str | None) -> bytes:
        return self.head + orjson.dumps(department) + self.tail


def render(body: Mapping[str, Any]) -> Rendered:
    """Splits ``body`` (without ``department``) so that ``department`` lands right after ``type``.

    Byte for byte what ``orjson.dumps`` gives for the whole dict with the department in place."""
    items = [(k, v) for k, v in body.items() if k != "department"]
    cut = next((i + 1 for i, (k, _) in enumerate(items) if k == "type"), len(items))

    def pair(kv: tuple[str, Any]) -> bytes:
        return orjson.dumps(kv[0]) + b":" + orjson.dumps(kv[1])

    before = b",".join(pair(kv) for kv in items[:cut])
    after = b",".join(pair(kv) for kv in items[cut:])
    head = b"{" + before + (b"," if before else b"") + b'"department":'
    return Rendered(head, (b"," + after if after else b"") + b"}")


@dataclass(frozen=True, slots=True)
class Notice:
    """One event to notify: what it is about, who gets it, and its body.

    ``event_id`` is an int for alert events and ``"hazard-{id}"`` for hazard events, so the two
    never collide; ``topics`` maps a department to its MQTT topic (empty: no topic rows);
    ``severity`` None means ``min_severity`` does not filter (hazards); ``metric`` None (hazards)
    is matched only by whole-site silences, which apply to alert events only.
    """

    subject: Subject
    subject_id: str
    event_id: int | str
    type: str
    body: Mapping[str, Any]
    departments: tuple[str, ...]
    site: str
    family: str
    street: str
    metric: str | None = None
    severity: Severity | None = None
    topics: Mapping[str, str] = field(default_factory=dict)
    rendered: Rendered = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.subject not in SUBJECTS:
            raise ValueError(f"notice subject={self.subject!r}: expected one of {', '.join(SUBJECTS)}")
        object.__setattr__(self, "rendered", render(self.body))

    @property
    def event_key(self) -> str:
        """The event id as text: the outbox's dedup key and the webhook's X-Safewatch-Event-Id."""
        return str(self.event_id)

    def payload(self, department: str | None) -> bytes:
        """The wire body for ``department`` (None on the admin's SSE stream)."""
        return self.rendered.for_department(department)

    def wanted_by(self, sub: Wants) -> bool:
        return sub.matches(self.severity, self.family, self.street, self.site)
