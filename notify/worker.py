"""The outbox worker: delivers planned notifications, off the hot path, at least once.

One dispatcher thread claims the due head row of each target (a subscription or an MQTT
topic) and hands the target to a thread pool, where it is drained in id order. Targets
run in parallel and each send has its channel's own timeout, so a slow receiver holds up
only its own queue. Each row goes through the stages of ``notify.stages`` (unsubscribed →
silence → send → record). Dedup: the outbox has one row per (event, target) (a unique
constraint), and a row is only sent while this worker holds its lease, so a receiver sees an
event once unless a send succeeded and the process died before recording it (receivers dedup
on the event id).

Rows survive restarts in the state database; a row claimed by a process that died becomes
due again when its lease (``lease_s``) ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.exc import SQLAlchemyError

from domain.clock import Clock, now_ms
from notify.channels.base import Channel
from notify.notification import Notification
from notify.options import DeliveryMetrics, DeliveryOptions
from notify.stages import DropUnsubscribed, Pipeline, Record, Send, Silence
from store.state.records import OutboxItem
from store.state.store import StateStore

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(self, state: StateStore, channels: Mapping[str, Channel], metrics: DeliveryMetrics,
                 options: DeliveryOptions | None = None, clock: Clock = now_ms) -> None:
        self._state = state
        self.options = options or DeliveryOptions()
        self._clock = clock  # leases, due times, backoff and give-up: tests move it
        self.pipeline = Pipeline((DropUnsubscribed(state), Silence(state, clock), Send(channels)),
                                 Record(state, metrics, self.options, clock))
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
        for item in self._state.claim_heads(self._clock(), lease, limit=free, busy=busy):
            with self._busy_lock:
                self._busy.add(item.target)
            self._pool.submit(self._drain, item)

    def _sleep_s(self) -> float:
        due = self._state.next_due_ms()
        if due is None:
            return self.options.poll_s
        return min(self.options.poll_s, max(0.0, (due - self._clock()) / 1000))

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
                item = self._state.claim_head(first.target, self._clock(), lease)
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
        now = self._clock() if at_ms is None else at_ms
        released = 0
        for item in self._state.silenced_latest(now - int(lookback_s * 1000)):
            if self._state.silence_for(item.department, item.site, item.metric or "", now) is None and \
                    self._state.requeue(item.id, now, "silence ended"):
                released += 1
        if released:
            self.kick()
        return released

    def process(self, item: OutboxItem) -> bool:
        """Runs the stages for one claimed row; True when it is finished (any final status)."""
        return self.pipeline(Notification.of(item))
