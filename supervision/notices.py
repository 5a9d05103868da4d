"""Hazard events as notifications: one ``notify.Notice`` per event, by the same delivery as alerts.

The body is ``{"event_id", "type", "department", "hazard": {...}}`` with ``event_id``
``hazard-{id}`` (never equal to an alert event's) and ``type`` ``hazard_listed`` ...; MQTT goes to
``{district}/hazards/{department}/{level}``; ``min_severity`` does not filter (``severity``
None), the family, street and site filters do. The outbox rows are written in the event's own
transaction (``plan``), the SSE stream and the delivery wake-up follow the commit (``published``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo
from typing import Protocol

from sqlalchemy.orm import Session

from domain.hazards import Hazard, HazardEvent
from notify import Notice, enqueue_notice, hazard_topic
from supervision.json import hazard_json


class NotifyFace(Protocol):
    """What supervision uses of ``notify.NotifyService``."""

    @property
    def mqtt_topics(self) -> bool: ...

    def publish(self, notices: Iterable[Notice]) -> None: ...

    def kick(self) -> None: ...


class HazardNotices:
    """``notify`` None (tests of the ledger alone): rows are planned, nothing is streamed or woken,
    and no MQTT topics are named."""

    def __init__(self, district: str, tz: tzinfo, notify: NotifyFace | None = None) -> None:
        self._district = district
        self._tz = tz
        self._notify = notify
        self._mqtt_topics = notify is not None and notify.mqtt_topics
        self.on_local: Callable[[int], None] | None = None  # the relay learns this process's events

    def notice(self, event: HazardEvent, hazard: Hazard, departments: Sequence[str] | None = None) -> Notice:
        deps = tuple(hazard.departments if departments is None else departments)
        event_id = f"hazard-{event.id}"
        body = {"event_id": event_id, "type": event.notice_type, "hazard": hazard_json(hazard, self._tz)}
        topics = ({d: hazard_topic(self._district, d, hazard.level.value) for d in deps}
                  if self._mqtt_topics else {})
        return Notice(subject="hazard", subject_id=hazard.id, event_id=event_id, type=event.notice_type,
                      body=body, departments=deps, site=hazard.site, family=hazard.family,
                      street=hazard.street, topics=topics)

    def plan(self, session: Session, event: HazardEvent, hazard: Hazard, departments: Sequence[str]) -> int:
        return enqueue_notice(session, self.notice(event, hazard, departments))

    def published(self, event: HazardEvent, hazard: Hazard) -> None:
        if self.on_local is not None:
            self.on_local(event.id)
        if self._notify is not None:
            self._notify.publish([self.notice(event, hazard)])
            self._notify.kick()
