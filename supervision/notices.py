"""Hazard events as notifications: one ``notify.Notice`` per event, by the same delivery as alerts.

The body is ``{"event_id", "type", "department", "hazard": {...}}`` with ``event_id``
``hazard-{id}`` (never equal to an alert event's) and ``type`` ``hazard_listed`` ...; the hazard
carries its last ``notify.EVENTS_TAIL`` events, so a long-lived hazard's notifications do not
grow with every move (``GET /api/v1/hazards/{id}`` has them all). MQTT goes to
``{district}/hazards/{department}/{level}``; ``min_severity`` does not filter (``severity``
None), the family, street and site filters do. The notice is built once, in the event's own
transaction, where its outbox rows are written (``plan``); the ledger hands that same notice to
``published`` after the commit, for the SSE stream and the delivery wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import tzinfo
from typing import Protocol

from sqlalchemy.orm import Session

from domain.hazards import Hazard, HazardEvent
from notify import EVENTS_TAIL, Notice, enqueue_notice, hazard_topic
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
        body = {"event_id": event_id, "type": event.notice_type,
                "hazard": hazard_json(hazard, self._tz, tail=EVENTS_TAIL)}
        topics = ({d: hazard_topic(self._district, d, hazard.level.value) for d in deps}
                  if self._mqtt_topics else {})
        return Notice(subject="hazard", subject_id=hazard.id, event_id=event_id, type=event.notice_type,
                      body=body, departments=deps, site=hazard.site, family=hazard.family,
                      street=hazard.street, topics=topics)

    def plan(self, session: Session, event: HazardEvent, hazard: Hazard, departments: Sequence[str]) -> Notice:
        """Adds the event's outbox rows in ``session``'s transaction; returns the notice, which the
        ledger hands to ``published`` once that transaction has committed."""
        notice = self.notice(event, hazard, departments)
        enqueue_notice(session, notice)
        return notice

    def published(self, event: HazardEvent, notice: Notice) -> None:
        if self.on_local is not None:
            self.on_local(event.id)
        if self._notify is not None:
            self._notify.publish([notice])
            self._notify.kick()
