"""Safewatch notify: delivery of alert and hazard events, at least once, to where they may go.

Fed by ``alerting`` (alert events) and ``supervision`` (hazard events); uses ``store`` (the
outbox and subscriptions in the state database), ``transport`` (through the MQTT publisher it
is handed) and ``domain``.

The interface for an event's owner (alerting, supervision):

1. Build one ``Notice`` per event::

       Notice(subject="hazard", subject_id=str(hazard.id), event_id=f"hazard-{event.id}",
              type="hazard_listed", body={"event_id": f"hazard-{event.id}", "type": "hazard_listed",
                                          "hazard": {...}},          # department-free
              departments=("commerce", "street_x"), site=..., family=..., street=...,
              metric=None, severity=None,                           # None: min_severity does not filter
              topics={d: hazard_topic(district, d, level) for d in departments})

   Alert event ids are ints, hazard event ids the strings ``"hazard-{id}"``: the two never
   collide in the outbox's dedup key or in receivers' dedup. The body is rendered once, at
   construction; each department's body is a splice (``notice.payload(department)``) giving
   ``{"event_id", "type", "department", <subject>: {...}}`` (contract section 6). Leave
   ``topics`` empty when no MQTT publisher runs (tests).
2. Inside the transaction that records the event: ``enqueue_notice(tx, notice) -> int`` (``tx``
   a ``BookTx`` or a SQLAlchemy ``Session`` on the state database) adds one outbox row per
   (department, target): the department's topic, and each of its subscriptions whose family,
   street and site filters match (and ``min_severity``, when the notice has a severity).
3. After the commit, with that same notice (never a second rendering): ``notify.publish([notice])``
   (the SSE stream shows it to callers who see one of ``notice.departments``, to site users whose
   site it is, and to the admin; frames of non-integer event ids carry no SSE ``id:``, so
   ``Last-Event-ID`` resumption stays on alert events), then ``notify.kick()`` so delivery looks
   now rather than at its next poll.

``notify`` there is the process's ``NotifyService`` (``notify.service``): the broadcaster, the
channels, the ``DeliveryWorker`` and its metrics. ``service.runtime`` builds it and hands it to
``AlertService`` and to supervision's ``HazardNotices``; they use only the face above (and
``notify.planner(tz)`` / ``notify.mqtt_topics`` to plan), and whoever built it starts and stops
it. Bodies: alert bodies come from ``notify.payload``; hazard bodies from ``supervision.json``.
Both carry the last ``EVENTS_TAIL`` events of their subject.

Delivery (``DeliveryWorker``) runs each row through ``notify.stages``: drop-if-unsubscribed (which
resolves a subscription target to its ``Recipient``) → silence (alert events only) → send →
record. A row's typed target is built from its columns; its ``target`` key only orders and
groups. Channels (``WebhookChannel``: signed POSTs, no redirects; ``MqttChannel``) take the
``Notification`` and its ``Recipient``, never a database record. ``TargetPolicy`` says where
notifications may go (contract section 6): checked by the API when a subscription is created
(``check_subscription``, a ``TargetRefused`` is the 422 detail) and by the channels at every send,
after DNS resolution.
"""

from notify.broadcast import AsyncSubscriber, Broadcaster, Subscriber
from notify.channels.base import Channel, SendResult
from notify.channels.mqtt import MqttChannel, Publisher
from notify.channels.webhook import WebhookChannel, signature
from notify.notice import Notice, Subject, SubscriptionTarget, Target, TopicTarget
from notify.notification import Notification, Recipient
from notify.options import DeliveryMetrics, DeliveryOptions, backoff_s
from notify.payload import (
    EVENTS_TAIL,
    alert_json,
    alert_notice,
    alert_topic,
    event_json,
    hazard_topic,
    notification_body,
    rfc3339,
)
from notify.planner import Planner, enqueue_notice
from notify.policy import Resolver, TargetPolicy, TargetRefused, system_resolver
from notify.service import NotifyService
from notify.worker import DeliveryWorker

__all__ = [
    "EVENTS_TAIL", "AsyncSubscriber", "Broadcaster", "Channel", "DeliveryMetrics", "DeliveryOptions",
    "DeliveryWorker", "MqttChannel", "Notice", "Notification", "NotifyService", "Planner", "Publisher",
    "Recipient", "Resolver", "SendResult", "Subject", "Subscriber", "SubscriptionTarget", "Target",
    "TargetPolicy", "TargetRefused", "TopicTarget", "WebhookChannel", "alert_json", "alert_notice",
    "alert_topic", "backoff_s", "enqueue_notice", "event_json", "hazard_topic", "notification_body",
    "rfc3339", "signature", "system_resolver",
]
