"""``NotifyService``: one process's notification runtime, and the face its event owners use.

It holds the SSE ``Broadcaster``, the channels (webhook always, MQTT when a publisher is given),
the ``DeliveryWorker`` and its metrics. ``service.runtime`` (the composition root) builds one
per process and hands it to ``alerting`` and ``supervision``, which use only its face:
``planner``/``mqtt_topics`` to plan rows in their transactions, then after the commit
``publish(notices)`` (the SSE stream) and ``kick()`` (delivery looks now). Whoever built it
starts and stops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import tzinfo

from prometheus_client import CollectorRegistry

from domain.clock import Clock, now_ms
from notify.broadcast import Broadcaster
from notify.channels.base import Channel
from notify.channels.mqtt import MqttChannel, Publisher
from notify.channels.webhook import WebhookChannel
from notify.notice import Notice
from notify.options import DeliveryMetrics, DeliveryOptions
from notify.planner import Planner
from notify.policy import TargetPolicy
from notify.worker import DeliveryWorker
from store.state.store import StateStore


class NotifyService:
    """``targets`` says where notifications may go (contract section 6) and names the district;
    ``publisher`` (MQTT) None means no MQTT channel, and then no rows for MQTT topics are
    planned; ``registry`` None gives the metrics a private registry; ``timeout_s`` bounds each
    send; ``clock`` is the worker's (leases, due times, silences), moved by tests."""

    def __init__(self, state: StateStore, targets: TargetPolicy, registry: CollectorRegistry | None = None, *,
                 publisher: Publisher | None = None, options: DeliveryOptions | None = None,
                 timeout_s: float = 5.0, clock: Clock = now_ms) -> None:
        self.targets = targets
        self.broadcaster = Broadcaster()
        channels: dict[str, Channel] = {"webhook": WebhookChannel(targets, timeout_s)}
        if publisher is not None:
            channels["mqtt"] = MqttChannel(publisher, targets, timeout_s)
        self.channels: Mapping[str, Channel] = channels
        self.metrics = DeliveryMetrics(registry if registry is not None else CollectorRegistry())
        self.worker = DeliveryWorker(state, channels, self.metrics, options, clock)

    @property
    def district(self) -> str:
        return self.targets.district

    @property
    def mqtt_topics(self) -> bool:
        """Whether notices name the contract's per-department MQTT topics: only with an MQTT
        channel to send them, or their rows would only ever be dropped."""
        return "mqtt" in self.channels

    def planner(self, tz: tzinfo) -> Planner:
        """Alert events → notices → outbox rows, with this process's MQTT topics (or none)."""
        return Planner(self.district, tz, mqtt_topics=self.mqtt_topics)

    def publish(self, notices: Iterable[Notice]) -> None:
        """After the commit: the notices to the SSE stream (outbox rows are the worker's)."""
        for notice in notices:
            self.broadcaster.publish(notice)

    def kick(self) -> None:
        """After the commit that added outbox rows: delivery looks now, not at its next poll."""
        self.worker.kick()

    def release_silenced(self, at_ms: int | None = None) -> int:
        """Sends what an ended silence held back of still-firing alerts; see ``DeliveryWorker``."""
        return self.worker.release_silenced(at_ms)

    def start(self) -> None:
        """Starts delivering (a process without the delivery role never calls it: another one
        delivers from the shared outbox; its SSE stream works all the same)."""
        self.worker.start()

    def stop(self) -> None:
        """Stops delivery (sends in progress finish), ends SSE subscriptions, closes the channels."""
        self.worker.stop()
        self.broadcaster.close()
        for ch in self.channels.values():
            ch.close()
