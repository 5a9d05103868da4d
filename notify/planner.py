"""Fan-out: which outbox rows one notice makes, written in the event's own transaction.

Per department of the notice: its MQTT topic (when the notice names one) and each of its
subscriptions whose filters match. The body is the notice's, spliced with the department;
each row is signed at send time with its subscription's secret.
"""

from __future__ import annotations

from datetime import tzinfo

from sqlalchemy.orm import Session

from domain.alerts import Alert, AlertEvent
from notify.notice import Notice, SubscriptionTarget, Target, TopicTarget
from notify.payload import alert_notice, alert_topic
from store.state.book import BookTx
from store.state.records import NewOutbox


def _row(notice: Notice, target: Target, channel: str, department: str, payload: bytes) -> NewOutbox:
    return NewOutbox(
        event_key=notice.event_key, subject=notice.subject, subject_id=notice.subject_id,
        channel=channel, target_kind=target.kind, target=target.key, department=department,
        site=notice.site, metric=notice.metric, payload=payload,
        event_id=notice.event_id if isinstance(notice.event_id, int) else None,
        subscription_id=target.id if isinstance(target, SubscriptionTarget) else None,
        topic=target.topic if isinstance(target, TopicTarget) else None,
    )


def plan_rows(tx: BookTx, notice: Notice) -> list[NewOutbox]:
    out: list[NewOutbox] = []
    for dep in notice.departments:
        payload = notice.payload(dep)
        topic = notice.topics.get(dep)
        if topic is not None:
            out.append(_row(notice, TopicTarget(topic), "mqtt", dep, payload))
        for sub in tx.subscriptions(dep):
            if notice.wanted_by(sub):
                out.append(_row(notice, SubscriptionTarget(sub.id), sub.channel, dep, payload))
    return out


def enqueue_notice(tx: BookTx | Session, notice: Notice) -> int:
    """Adds the notice's outbox rows inside the caller's transaction; returns how many.

    ``tx`` is the alert book's ``BookTx`` or any SQLAlchemy session on the state database (the
    rows commit or roll back with it). Wake the delivery worker after the commit."""
    book = tx if isinstance(tx, BookTx) else BookTx(tx)
    return book.enqueue(plan_rows(book, notice))


class Planner:
    """Alert events → notices → outbox rows; what ``alerting.lifecycle`` calls in its transaction."""

    def __init__(self, district: str, tz: tzinfo, mqtt_topics: bool) -> None:
        self._district = district
        self._tz = tz
        self._mqtt_topics = mqtt_topics

    def notice(self, event: AlertEvent, alert: Alert) -> Notice:
        topics = ({d: alert_topic(self._district, d, event.severity.label) for d in alert.departments}
                  if self._mqtt_topics else None)
        return alert_notice(event, alert, self._tz, topics)

    def rows(self, tx: BookTx, event: AlertEvent, alert: Alert) -> list[NewOutbox]:
        return plan_rows(tx, self.notice(event, alert))

    def __call__(self, tx: BookTx, event: AlertEvent, alert: Alert) -> int:
        """Adds the event's rows to the outbox; returns how many."""
        return enqueue_notice(tx, self.notice(event, alert))
