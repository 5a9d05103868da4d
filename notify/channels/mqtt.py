"""MQTT channel: alert events on ``{district}/alerts/{department}/{severity}`` (QoS 1) and on the
topics of mqtt subscriptions, which the target policy keeps under the subscriber's own prefix.

A row counts as delivered once the broker has acknowledged it (PUBACK); until then it is
retried from the outbox like a webhook, so the topic gets every event at least once.
"""

from __future__ import annotations

from typing import Protocol

from notify.channels.base import SendResult
from notify.notice import TopicTarget
from notify.notification import Notification
from notify.policy import TargetPolicy, TargetRefused


class Publisher(Protocol):
    """The part of ``transport.mqtt.MqttClient`` this channel uses."""

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                wait: bool = False, timeout: float = 10.0) -> None: ...


class MqttChannel:
    channel = "mqtt"

    def __init__(self, publisher: Publisher, policy: TargetPolicy, timeout: float = 5.0) -> None:
        if timeout <= 0:
            raise ValueError(f"mqtt notify timeout={timeout!r}: expected seconds > 0")
        self._publisher = publisher
        self._policy = policy
        self.timeout = timeout

    def send(self, n: Notification) -> SendResult:
        """Publishes to the subscription's topic (checked again), or to the department topic."""
        if isinstance(n.target, TopicTarget):
            topic = n.target.topic  # planned by us from the contract's topic scheme
        elif n.recipient is not None:
            topic = n.recipient.url
            try:
                self._policy.check_topic(topic, n.recipient.department, n.recipient.admin_scope)
            except TargetRefused as err:
                return SendResult.refuse(f"publish refused: {err}")
        else:
            return SendResult.give_up(f"mqtt notification to {n.target.key!r} names no topic")
        try:
            self._publisher.publish(topic, n.payload, qos=1, wait=True, timeout=self.timeout)
        except Exception as err:  # any publisher failure is the broker's, so retry later
            return SendResult.retry(f"publish to {topic!r}: {type(err).__name__}: {err}")
        return SendResult.success()

    def close(self) -> None:
        """The publisher belongs to the caller, who closes it."""
