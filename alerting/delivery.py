"""The outbox worker: delivers planned notifications, off the hot path, at least once.

One dispatcher thread claims the due head row of each target (a subscription or an MQTT
topic) and hands the target to a thread pool, where it is drained in id order. Targets
run in parallel and each send has its channel's own timeout, so a slow receiver holds up
only its own queue. Each row goes through these stages:

1. subscription: a row whose subscription was deleted is ``dropped``;
2. silence: a row a silence covers (department, site, optional metric) is ``silenced`` —
   the alert and event stay in the book, only the notification is held back; when the
   silence ends, ``release_silenced`` sends the newest held-back event of each alert still
   firing, so a leak that began during maintenance is not left unannounced;
3. dedup: the outbox has one row per (event, target) (a unique constraint), and a row is
   only sent while this worker holds its lease, so a receiver sees an event once unless a
   send succeeded and the process died before recording it (receivers dedup on event id);
4. send: success → ``delivered``; a retryable failure → exponential backoff with jitter,
   capped at ``backoff_cap_s`` (or the receiver's Retry-After), while the rest of that
   target's queue waits, keeping its order; a final failure, or retrying longer than
   ``give_up_after_s``, → ``failed`` with the error recorded.

Rows survive restarts in the state database; a row claimed by a process that died becomes
due again when its lease (``lease_s``) ends.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.exc import SQLAlchemyError

from alerting.notify.base import Notifier, SendResult
from store.state.records import OutboxItem, Subscription
from store.state.session import now_ms
from store.state.store import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    workers: int = 16  # targets sent to at once
    # A claimed row is someone else's to retry only after this. Twice the webhook timeout: long enough
    # that a live sender never loses its row, short enough that a SIGKILLed one delays it only briefly.
    lease_s: float = 10.0
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 300.0
    give_up_after_s: float = 24 * 3600.0
    poll_s: float = 1.0  # longest sleep between outbox scans when nothing kicks the worker
    burst: int = 200  # rows sent to one target before it yields its thread to others

    def __post_init__(self) -> None:
        for name in ("workers", "lease_s", "backoff_base_s", "backoff_cap_s", "give_up_after_s", "poll_s",
                     "burst"):
            if getattr(self, name) <= 0:
                raise ValueError(f"delivery option {name}={getattr(self, name)!r}: expected a positive number")


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("safewatch_notifications_sent", "Notifications delivered, by channel",
                            ["channel"], registry=registry)
        self.failed = Counter("safewatch_notifications_failed",
                              "Notification attempts that failed, by channel and whether retried",
                              ["channel", "retry"], registry=registry)
        self.held = Counter("safewatch_notifications_held", "Notifications not sent: silenced or dropped",
                            ["reason"], registry=registry)


def backoff_s(attempts: int, opts: DeliveryOptions, rng: random.Random) -> float:
    """Delay before attempt ``attempts + 1``: base·2^(attempts-1), capped, with ±20% jitter so
    that rows failing together (one receiver down) do not retry in lockstep."""
    raw = min(opts.backoff_cap_s, opts.backoff_base_s * 2 ** min(attempts - 1, 30))
    return float(raw * rng.uniform(0.8, 1.2))


class DeliveryWorker:
    def __init__(self, state: StateStore, notifiers: Mapping[str, Notifier], metrics: DeliveryMetrics,
                 options: DeliveryOptions | None = None) -> None:
        self._state = state
        self._notifiers = dict(notifiers)
        self._metrics = metrics
        self.options = options or DeliveryOptions()
        self._rng = random.Random()
        self._kick = threading.Event()
        self._stopping = threading.Event()
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._pool = ThreadPoolExecutor(self.options.workers, thread_name_prefix="safewatch-deliver")
        self._thread = threading.Thread(target=self._dispatch, name="safewatch-delivery", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """New rows are in the outbox: look now rather than at the next poll."""
        self._kick.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stops claiming; sends in progress finish (each bounded by its channel's timeout)."""
        self._stopping.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            self._kick.clear()
            try:
                self._claim_and_submit()
                wait = self._sleep_s()
            except SQLAlchemyError as err:
                log.warning("delivery: state database unavailable (%s); retrying", err.__class__.__name__)
                wait = self.options.poll_s
            except Exception:
                log.exception("delivery: dispatcher error; retrying")
                wait = self.options.poll_s
            self._kick.wait(wait)

    def _claim_and_submit(self) -> None:
        with self._busy_lock:
            busy = set(self._busy)
        free = self.options.workers - len(busy)
        if free <= 0 or self._pool is None:
            return
        lease = int(self.options.lease_s * 1000)
        for item in self._state.claim_heads(now_ms(), lease, limit=free, busy=busy):
            with self._busy_lock:
                self._busy.add(item.target)
            self._pool.submit(self._drain, item)

    def _sleep_s(self) -> float:
        due = self._state.next_due_ms()
        if due is None:
            return self.options.poll_s
        return min(self.options.poll_s, max(0.0, (due - now_ms()) / 1000))

    def _drain(self, first: OutboxItem) -> None:
        """Sends ``first``, then the rest of its target's due rows, in order."""
        item: OutboxItem | None = first
        lease = int(self.options.lease_s * 1000)
        try:
            for _ in range(self.options.burst):
                if item is None or self._stopping.is_set():
                    break
                if not self.process(item):
                    break  # waiting for a retry: later rows of this target wait behind it
                item = self._state.claim_head(first.target, now_ms(), lease)
        except Exception:
            log.exception("delivery: error while sending to %s", first.target)
        finally:
            with self._busy_lock:
                self._busy.discard(first.target)
            self._kick.set()

    def release_silenced(self, at_ms: int | None = None, lookback_s: float = 24 * 3600.0) -> int:
        """Sends, once its silence has ended, the newest held-back notification of each alert
        that is still firing (as Alertmanager notifies a still-firing alert after a silence);
        returns how many. Alerts that resolved meanwhile stay quiet."""
        now = now_ms() if at_ms is None else at_ms
        released = 0
        for item in self._state.silenced_latest(now - int(lookback_s * 1000)):
            site, metric = _site_metric(item.payload)
            if self._state.silence_for(item.department, site, metric, now) is None and \
                    self._state.requeue(item.id, now, "silence ended"):
                released += 1
        if released:
            self.kick()
        return released

    # -- one row -----------------------------------------------------------------------------

    def process(self, item: OutboxItem) -> bool:
        """Runs the stages for one claimed row; True when it is finished (any final status)."""
        sub: Subscription | None = None
        if item.subscription_id is not None:
            sub = self._state.get_subscription(item.subscription_id)
            if sub is None:
                return self._final(item, "dropped", f"subscription {item.subscription_id} was deleted")
        site, metric = _site_metric(item.payload)
        silence = self._state.silence_for(item.department, site, metric)
        if silence is not None:
            return self._final(item, "silenced", f"silence {silence.id} until {silence.until.isoformat()}")
        notifier = self._notifiers.get(item.channel)
        if notifier is None:
            return self._final(item, "dropped", f"channel {item.channel!r} is not enabled in this process")
        try:
            result = notifier.send(item, sub)
        except Exception as err:  # a notifier bug must not kill the worker or lose the row
            log.exception("delivery: %s notifier raised", item.channel)
            result = SendResult.retry(f"{type(err).__name__}: {err}")
        return self._record(item, result)

    def _record(self, item: OutboxItem, result: SendResult) -> bool:
        attempts = item.attempts + 1
        now = now_ms()
        if result.ok:
            self._state.mark_delivered(item.id, now, attempts)
            self._metrics.sent.labels(item.channel).inc()
            return True
        too_old = now - item.created_ms >= self.options.give_up_after_s * 1000
        if not result.retryable or too_old:
            self._metrics.failed.labels(item.channel, "no").inc()
            why = result.error if not too_old else f"gave up after {self.options.give_up_after_s:g}s: {result.error}"
            log.warning("delivery: giving up on event %s to %s: %s", item.event_id, item.target, why)
            self._state.mark_final(item.id, "failed", attempts, why)
            return True
        self._metrics.failed.labels(item.channel, "yes").inc()
        delay = backoff_s(attempts, self.options, self._rng)
        if result.retry_after_s is not None:
            delay = max(delay, result.retry_after_s)
        self._state.mark_retry(item.id, attempts, now + int(delay * 1000), result.error)
        return False

    def _final(self, item: OutboxItem, status: str, why: str) -> bool:
        self._metrics.held.labels(status).inc()
        self._state.mark_final(item.id, status, item.attempts, why)
        return True


def _site_metric(payload: bytes) -> tuple[str, str]:
    """The alert's site and metric from the stored body (planned by us, so well-formed)."""
    try:
        alert = orjson.loads(payload)["alert"]
        return str(alert["site"]), str(alert["metric"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "", ""
