"""The delivery pipeline, one stage per concern, as Alertmanager's ``notify.go`` composes its stages.

Each stage takes a ``Notification`` and either passes it on (possibly enriched) or ends it with
an ``Outcome``; ``Record`` writes the outcome to the outbox. In order:

1. ``DropUnsubscribed``: a row whose subscription was deleted is ``dropped``; otherwise the
   subscription's ``Recipient`` (URL or topic, secret, scope) is read now and carried on, so
   channels never see a database record;
2. ``Silence``: an alert row a silence covers (department, site, optional metric) at the
   worker's clock is ``silenced`` — the alert stays in the book, only the notification is held
   back (hazard events are supervision records and are not silenced);
3. ``Send``: through the row's channel; a channel this process lacks ``dropped``s the row;
4. ``Record``: success → ``delivered``; a retryable failure → exponential backoff with jitter,
   capped (or the receiver's Retry-After), while the rest of that target's queue waits; a final
   failure (including a target the policy refused at send), or retrying longer than
   ``give_up_after_s``, → ``failed`` with the error recorded.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from domain.clock import Clock, now_ms
from notify.channels.base import Channel, SendResult
from notify.notice import SubscriptionTarget
from notify.notification import Notification, Recipient
from notify.options import DeliveryMetrics, DeliveryOptions, backoff_s
from store.state.store import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a notification ended this time: ``held`` (dropped/silenced, with ``status``) or ``sent``."""

    status: str  # dropped | silenced | sent
    why: str = ""
    result: SendResult | None = None


class Stage(Protocol):
    def __call__(self, n: Notification) -> Notification | Outcome: ...


class DropUnsubscribed:
    def __init__(self, state: StateStore) -> None:
        self._state = state

    def __call__(self, n: Notification) -> Notification | Outcome:
        if not isinstance(n.target, SubscriptionTarget):
            return n
        sub = self._state.get_subscription(n.target.id)
        if sub is None:
            return Outcome("dropped", f"subscription {n.target.id} was deleted")
        return n.to(Recipient(url=sub.url, secret=sub.secret, department=sub.department,
                              admin_scope=sub.admin_scope))


class Silence:
    def __init__(self, state: StateStore, clock: Clock = now_ms) -> None:
        self._state = state
        self._clock = clock  # the worker's: a silence ends when its due times and leases say so

    def __call__(self, n: Notification) -> Notification | Outcome:
        if n.subject != "alert":
            return n
        silence = self._state.silence_for(n.department, n.site, n.metric or "", self._clock())
        if silence is None:
            return n
        return Outcome("silenced", f"silence {silence.id} until {silence.until.isoformat()}")


class Send:
    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self._channels = dict(channels)

    def __call__(self, n: Notification) -> Notification | Outcome:
        channel = self._channels.get(n.channel)
        if channel is None:
            return Outcome("dropped", f"channel {n.channel!r} is not enabled in this process")
        try:
            result = channel.send(n)
        except Exception as err:  # a channel bug must not kill the worker or lose the row
            log.exception("delivery: %s channel raised", n.channel)
            result = SendResult.retry(f"{type(err).__name__}: {err}")
        return Outcome("sent", result=result)


class Record:
    """Writes an outcome; returns True when the row is finished (any final status)."""

    def __init__(self, state: StateStore, metrics: DeliveryMetrics, options: DeliveryOptions,
                 clock: Clock = now_ms) -> None:
        self._state = state
        self._metrics = metrics
        self._options = options
        self._clock = clock
        self._rng = random.Random()

    def __call__(self, n: Notification, outcome: Outcome) -> bool:
        result = outcome.result
        if result is None:
            self._metrics.held.labels(outcome.status).inc()
            self._state.mark_final(n.row_id, outcome.status, n.attempts, outcome.why)
            return True
        attempts = n.attempts + 1
        now = self._clock()
        if result.ok:
            self._state.mark_delivered(n.row_id, now, attempts)
            self._metrics.sent.labels(n.channel).inc()
            return True
        give_up_ms = self._options.give_up_after_s * 1000
        too_old = now - n.created_ms >= give_up_ms
        if not result.retryable or too_old:
            self._metrics.failed.labels(n.channel, "no").inc()
            if result.refused:
                self._metrics.refused.labels(n.channel).inc()
            why = result.error if not too_old else \
                f"gave up after {self._options.give_up_after_s:g}s: {result.error}"
            log.warning("delivery: giving up on event %s to %s: %s", n.event_key, n.target.key, why)
            self._state.mark_final(n.row_id, "failed", attempts, why)
            return True
        self._metrics.failed.labels(n.channel, "yes").inc()
        delay = backoff_s(attempts, self._options, self._rng)
        if result.retry_after_s is not None:
            delay = max(delay, result.retry_after_s)
        self._state.mark_retry(n.row_id, attempts, now + int(delay * 1000), result.error)
        return False


class Pipeline:
    """The stages in order, then ``Record``."""

    def __init__(self, stages: tuple[Stage, ...], record: Record) -> None:
        self.stages = stages
        self.record = record

    def __call__(self, n: Notification) -> bool:
        for stage in self.stages:
            step = stage(n)
            if isinstance(step, Outcome):
                return self.record(n, step)
            n = step
        raise RuntimeError("delivery pipeline ended without sending: the last stage must be Send")
