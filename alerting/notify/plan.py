"""Fan-out: which outbox rows one alert event makes, written in the event's own transaction.

Every event goes to every department on the alert at that moment (for ``escalated`` that is
the departments it adds and those already there, so the street office also learns that the
bureau was called in); per department, to the contract's MQTT topic and to each of its
subscriptions whose filters match. The body names the department, so each row carries its
own payload, signed at send time with its subscription's secret.
"""

from __future__ import annotations

from datetime import tzinfo

from alerting.notify.mqtt import TOPIC_PREFIX, alert_topic
from alerting.notify.payload import notification_body
from domain.alerts import Alert, AlertEvent
from store.state.book import BookTx
from store.state.records import NewOutbox


class Planner:
    def __init__(self, district: str, tz: tzinfo, mqtt_topics: bool) -> None:
        self._district = district
        self._tz = tz
        self._mqtt_topics = mqtt_topics

    def rows(self, tx: BookTx, event: AlertEvent, alert: Alert) -> list[NewOutbox]:
        out: list[NewOutbox] = []
        for dep in alert.departments:
            body = notification_body(event, alert, dep, self._tz)
            if self._mqtt_topics:
                topic = alert_topic(self._district, dep, event.severity.label)
                out.append(NewOutbox(event.id, alert.id, None, "mqtt", TOPIC_PREFIX + topic, dep, body))
            for sub in tx.subscriptions(dep):
                if sub.matches(alert.severity, alert.family, alert.street, alert.site):
                    out.append(NewOutbox(event.id, alert.id, sub.id, sub.channel, f"sub:{sub.id}", dep, body))
        return out

    def __call__(self, tx: BookTx, event: AlertEvent, alert: Alert) -> int:
        """Adds the event's rows to the outbox; returns how many."""
        return tx.enqueue(self.rows(tx, event, alert))
