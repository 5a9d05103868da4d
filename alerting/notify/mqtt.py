"""MQTT channel: each alert event on ``{district}/alerts/{department}/{severity}`` (QoS 1).

A row counts as delivered once the broker has acknowledged it (PUBACK); until then it is
retried from the outbox like a webhook, so the topic gets every event at least once.
"""

from __future__ import annotations

from typing import Protocol

from alerting.notify.base import SendResult
from store.state.records import OutboxItem, Subscription

TOPIC_PREFIX = "topic:"


class Publisher(Protocol):
    """The part of ``transport.mqtt.MqttClient`` this channel uses."""

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                wait: bool = False, timeout: float = 10.0) -> None: ...


def alert_topic(district: str, department: str, severity: str) -> str:
    return f"{district}/alerts/{department}/{severity}"


class MqttNotifier:
    channel = "mqtt"

    def __init__(self, publisher: Publisher, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError(f"mqtt notify timeout={timeout!r}: expected seconds > 0")
        self._publisher = publisher
        self.timeout = timeout

    def send(self, item: OutboxItem, subscription: Subscription | None) -> SendResult:
        """Publishes to the subscription's topic, or to the department topic in the row's target."""
        if subscription is not None:
            topic = subscription.url
        elif item.target.startswith(TOPIC_PREFIX):
            topic = item.target.removeprefix(TOPIC_PREFIX)
        else:
            return SendResult.give_up(f"mqtt row with target {item.target!r} names no topic")
        try:
            self._publisher.publish(topic, item.payload, qos=1, wait=True, timeout=self.timeout)
        except Exception as err:  # any publisher failure is the broker's, so retry later
            return SendResult.retry(f"publish to {topic!r}: {type(err).__name__}: {err}")
        return SendResult.success()

    def close(self) -> None:
        """The publisher belongs to the caller, who closes it."""
