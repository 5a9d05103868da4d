"""The alerting side of one process: engine, alert book, escalation; its events go to ``notify``.

``submit_batch`` is ingest's hand-off and stays on the hot path: it evaluates the batch
and, only when something changed, hands the signals to the book writer (``alerting.bookwriter``,
its own thread behind a bounded queue) and returns the ``Ticket`` the acknowledgement waits
for: done once the book transaction (alert, events and outbox rows together) has committed,
or the signals are in the durable journal while the state database is away. After the commit
the writer thread writes the ``alert_event`` points through the InfluxDB writer, publishes the
events' notices to the SSE stream and wakes delivery, through the ``notify.NotifyService`` it
was handed. ``handle_batch`` is the same, waiting for the ticket (tools, tests). Before
``start()`` the book is written on the caller's thread.

The engine raising is a bug, but one reading must not cost the alerts of a whole batch, nor
vanish silently: when it raises, the batch is judged again one reading at a time, the reading
it fails on is counted (``safewatch_engine_errors{judged="failed"}``) and kept in the dead
letters (``reason: engine_error``) and the rest of the batch goes on. The readings judged before
the failure lost their signals with the exception, and judging them again raises no change the
engine already took in, so they are counted (``judged="again"``) and dead-lettered too, saying
an alert change of theirs may be missing. Every reading itself is in InfluxDB either way.

At construction the engine is told what the book says is firing (open and acknowledged
alerts), so a restart after SIGKILL neither forgets an alert nor fires it again.

For the API: ``ack``/``close`` (raise ``AlertNotFound`` → 404, ``TransitionError`` → 409),
``latest(site)``, ``state`` (the StateStore) and ``broadcaster`` (the notify service's:
``subscribe_async()`` gives an async subscriber of ``notify.Notice``s; see ``notify.broadcast``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Protocol

import orjson
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from alerting.bookwriter import BookWriter, Ticket, unapplied
from alerting.engine import Engine, LatestValue
from alerting.escalation import Escalator
from alerting.journal import ALL_PARTITIONS, Journal
from alerting.lifecycle import FLAP_REOPENS, FLAP_WINDOW_S, Change, Lifecycle
from alerting.restore import WindowRestorer, restore_windows
from alerting.route import Router
from domain.alerts import Alert, AlertState, Signal
from domain.clock import now_ms
from domain.district import District
from domain.readings import Batch, DeviceStatus, Reading
from notify import Broadcaster, DeliveryOptions, NotifyService, Publisher, TargetPolicy
from store.deadletters import DeadLetters
from store.history import QueryClient
from store.lineproto import point_line
from store.state.records import dt_to_ms
from store.state.store import StateStore

log = logging.getLogger(__name__)

SWEEP_S = 5.0
ESCALATION_S = 5.0
SILENCE_EXPIRY_S = 10.0
HOUSEKEEPING_S = 60.0
KEEP_FINISHED_MS = 7 * 24 * 3600 * 1000  # delivered/failed outbox rows and ended silences
SYNC_WAIT_S = 60.0  # handle_batch/apply_signals/sweep wait this long for the book writer
DB_DOWN = (OperationalError, InterfaceError)  # worth retrying later, unlike a refused value
ENGINE_ERROR_LOG_S = 10.0  # a bug hit by every batch logs its traceback this often, not per batch


class Writer(Protocol):
    """The part of ``store.influx.InfluxWriter`` used here."""

    def put(self, lines: Sequence[bytes], on_durable: Any = None) -> None: ...


class _BookCollector(Collector):
    """Alerts by state and outbox depth, read from the book when Prometheus scrapes."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._state.count_alerts_by_state()
            depth = self._state.outbox_depth()
        except SQLAlchemyError:
            return  # /health reports the database; a scrape just lacks these series
        g = GaugeMetricFamily("safewatch_alerts", "Alerts in the book by state", labels=["state"])
        for state, n in counts.items():
            g.add_metric([state], n)
        yield g
        yield GaugeMetricFamily("safewatch_outbox_depth", "Notifications waiting for delivery", value=depth)


def alert_event_line(change: Change) -> bytes:
    """The contract's ``alert_event`` point (section 4) for one transition."""
    a, e = change.alert, change.event
    tags = {"site": a.site, "family": a.family, "metric": a.metric, "rule": a.rule,
            "severity": e.severity.label, "event": e.type.value}
    fields: dict[str, float | str] = {"alert_id": a.id}
    if e.value is not None:
        fields["value"] = float(e.value)
    # Empty tag values are not allowed in line protocol (a deadman alert has no metric).
    return point_line("alert_event", {k: v for k, v in tags.items() if v}, fields, dt_to_ms(e.at))


class AlertService:
    """``notify`` is the process's notification runtime (``service.runtime`` builds it and hands
    it to supervision too; it starts and stops it). Without one (tests, tools) the service builds
    its own from ``publisher`` (MQTT; None: no MQTT channel), ``targets`` (where notifications may
    go, contract section 6; by default nowhere loopback, link-local or unspecified), ``delivery``
    and ``webhook_timeout_s``, and starts and stops it with itself; these four are refused beside
    ``notify``, which has its own. ``writer`` (InfluxDB) and ``registry`` may be None: no points,
    a private registry. ``dead_letters`` keeps what the engine or the book could not take (None:
    logged and counted only). Keyword options tune flapping and job intervals."""

    def __init__(self, district: District, state: StateStore, writer: Writer | None = None,
                 publisher: Publisher | None = None, registry: CollectorRegistry | None = None, *,
                 notify: NotifyService | None = None,
                 delivery: DeliveryOptions | None = None, webhook_timeout_s: float | None = None,
                 targets: TargetPolicy | None = None,
                 flap_reopens: int = FLAP_REOPENS, flap_window_s: float = FLAP_WINDOW_S,
                 sweep_s: float = SWEEP_S, escalation_s: float = ESCALATION_S,
                 journal: Journal | None = None, partition: str = ALL_PARTITIONS,
                 resolve_orphans: bool = True, dead_letters: DeadLetters | None = None) -> None:
        self.district = district
        self.dead_letters = dead_letters
        self.state = state
        self.registry = registry if registry is not None else CollectorRegistry()
        self.engine = Engine(district)
        self.router = Router(district)
        self.notify = self._notify(notify, publisher, targets, delivery, webhook_timeout_s)
        self._owns_notify = notify is None
        # Called after every commit with its changes (supervision lists hazards from them).
        self.listeners: list[Callable[[Sequence[Change]], None]] = []
        self._writer = writer
        self._intervals = (sweep_s, escalation_s)
        self.lifecycle = Lifecycle(district, state, self.router, self.notify.planner(district.tz),
                                   flap_reopens=flap_reopens, flap_window_s=flap_window_s)
        self.escalator = Escalator(district, state, self.lifecycle)
        self.registry.register(_BookCollector(state))
        self._lock = threading.Lock()  # the engine is single-threaded; ingest and the sweep share it
        # Without a journal (tests, tools) signals wait in the queue while the database is away.
        self.book = BookWriter(self.lifecycle.apply, self._after, journal, lambda sigs: unapplied(state, sigs),
                               partition=partition, fence=lambda: self.lifecycle.fence, registry=self.registry,
                               dead_letters=dead_letters)
        self._engine_errors = Counter(
            "safewatch_engine_errors", "Readings and statuses of batches the alert engine raised on: the one it "
            "failed on, and those judged again after it (an alert change of theirs may be missing)",
            ["judged"], registry=self.registry)
        for judged in ("failed", "again"):
            self._engine_errors.labels(judged)
        self._engine_logged_at = -ENGINE_ERROR_LOG_S
        self._scheduler: BackgroundScheduler | None = None
        self._own_scheduler = False
        self._job_ids: list[str] = []
        self._restore(resolve_orphans)

    def _notify(self, given: NotifyService | None, publisher: Publisher | None, targets: TargetPolicy | None,
                delivery: DeliveryOptions | None, timeout_s: float | None) -> NotifyService:
        """The notify service handed in, or one of this service's own (see the class docstring)."""
        if given is not None:
            extra = [name for name, v in (("publisher", publisher), ("targets", targets), ("delivery", delivery),
                                          ("webhook_timeout_s", timeout_s)) if v is not None]
            if extra:  # they would be silently ignored: the given service has its own
                raise ValueError(f"AlertService: {', '.join(extra)} given beside notify; give them to the "
                                 "NotifyService")
            notify = given
        else:
            notify = NotifyService(self.state, targets if targets is not None else TargetPolicy(self.district.name),
                                   self.registry, publisher=publisher, options=delivery,
                                   timeout_s=5.0 if timeout_s is None else timeout_s)
        if notify.district != self.district.name:
            raise ValueError(f"notify service of district {notify.district!r} given to district "
                             f"{self.district.name!r}: its mqtt topics and topic prefixes would be wrong")
        return notify

    @property
    def broadcaster(self) -> Broadcaster:
        """The SSE broadcaster (the notify service's), for the API's stream."""
        return self.notify.broadcaster

    def _restore(self, resolve_orphans: bool) -> None:
        self.book.replay()  # a journal left by the last run goes in first: the engine restores from the book
        firing = self.state.entries([AlertState.OPEN, AlertState.ACKNOWLEDGED])
        orphans = set(self.engine.restore((e.alert.key, e.alert.severity) for e in firing))
        # An alert whose rule or site left the config can never clear by itself: resolve it,
        # on the record, rather than leave it open forever (it stays on the books until closed).
        clears = [Signal.clear(e.alert.key, family=e.alert.family, kind=e.alert.kind, at_ms=now_ms(),
                               value=e.alert.value, message="rule or site no longer in the config")
                  for e in firing if e.alert.key in orphans]
        # With leases (resolve_orphans False) nothing is fenced yet: each partition's holder
        # resolves its own once it holds the lease (service.ingests), through the fence.
        if clears and resolve_orphans:
            log.warning("alerting: resolving %d alerts whose rule or site is gone", len(clears))
            self.book.submit(clears)

    def restore_windows(self, sites: Collection[str] | None, history: QueryClient) -> int:
        """Before ingest subscribes for ``sites`` (None: all; after a restart): trend windows,
        pending ``for`` timers and latest values from InfluxDB (``history``), on top of the
        book's firing alerts restored at construction; see ``alerting.restore``. Returns the
        readings replayed; raises ``InfluxError`` when InfluxDB cannot answer."""
        def locked(apply: Callable[[], int]) -> int:
            with self._lock:
                return apply()

        restorer = WindowRestorer(self.district, history)
        return restore_windows(self.engine, self.district, restorer.source, sites, locked, last=restorer.last)

    # -- hot path ------------------------------------------------------------------------------

    def submit_batch(self, batch: Batch) -> Ticket | None:
        """Ingest's hand-off: evaluate, queue what changed for the book. None when nothing changed.
        Never raises for bad data or a database outage."""
        with self._lock:  # submitted under the engine lock: the book sees signals in engine order
            try:
                signals = self.engine.process(batch)
            except Exception as err:
                signals = self._one_by_one(batch, err)
            return self.book.submit(signals) if signals else None

    def _one_by_one(self, batch: Batch, first: Exception) -> list[Signal]:
        """After the engine raised on ``batch``: each reading (then status) judged alone, the
        failing ones and those judged before them dead-lettered (see the module docstring)."""
        now = time.monotonic()
        if now - self._engine_logged_at >= ENGINE_ERROR_LOG_S:
            self._engine_logged_at = now
            log.error("alerting: the engine failed on a batch of %d readings and %d statuses; judging it "
                      "again one at a time", len(batch.readings), len(batch.statuses), exc_info=first)
        items: list[Reading | DeviceStatus] = [*batch.readings, *batch.statuses]
        signals: list[Signal] = []
        first_failed: int | None = None
        for i, item in enumerate(items):
            one = Batch((item,)) if isinstance(item, Reading) else Batch((), (item,))
            try:
                signals += self.engine.process(one)
            except Exception as err:
                first_failed = i if first_failed is None else first_failed
                self._engine_errors.labels("failed").inc()
                self._dead_letter(item, f"the alert engine failed on it ({type(err).__name__}: {err}); "
                                        "it raised no alert change")
        # The first pass judged everything before the item it failed on; when the failure did
        # not come back, it may have been anywhere.
        before = items[:first_failed] if first_failed is not None else items
        if before:
            self._engine_errors.labels("again").inc(len(before))
            for item in before:
                self._dead_letter(item, "judged again after the alert engine failed on a later reading of its "
                                        "batch: an alert change it raised may be missing")
        return signals

    def _dead_letter(self, item: Reading | DeviceStatus, detail: str) -> None:
        if self.dead_letters is None:
            return
        if isinstance(item, Reading):
            topic = f"{self.district.name}/{item.family}/{item.site}/{item.device}/telemetry"
            payload = orjson.dumps({"ts": item.ts_ms, "values": dict(item.values)})
        else:
            topic = f"{self.district.name}/{item.family}/{item.site}/{item.device}/status"
            payload = orjson.dumps({"ts": item.ts_ms, "online": item.online})
        self.dead_letters.add("engine_error", topic, payload, detail, item.ts_ms)

    def handle_batch(self, batch: Batch) -> None:
        """``submit_batch``, returning once the book (or the journal) has the changes."""
        self._wait(self.submit_batch(batch))

    def apply_signals(self, signals: Sequence[Signal]) -> list[Change]:
        """Records signals made elsewhere (tests, tools) as the engine's would be."""
        with self._lock:
            ticket = self.book.submit(signals)
        return self._wait(ticket)

    def _wait(self, ticket: Ticket | None) -> list[Change]:
        if ticket is None:
            return []
        if not ticket.wait(SYNC_WAIT_S):
            log.warning("alerting: the book writer has not recorded a batch within %.0fs", SYNC_WAIT_S)
        return ticket.changes

    def _after(self, changes: Iterable[Change]) -> None:
        """Post-commit side effects: InfluxDB points, SSE, delivery wake-up, listeners. Never raises."""
        changes = list(changes)
        for listener in self.listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("alerting: a post-commit listener failed")
        lines: list[bytes] = []
        for c in changes:
            try:
                lines.append(alert_event_line(c))
            except ValueError:  # an id line protocol cannot carry; the book has the event
                log.exception("alerting: cannot encode the alert_event point of event %s", c.event.id)
        # The notices the book transaction planned rows from: the stream shows the same bodies.
        self.notify.publish(c.notice for c in changes if c.notice is not None)
        if lines and self._writer is not None:
            try:
                self._writer.put(lines)
            except Exception:
                log.exception("alerting: writing %d alert_event points failed", len(lines))
        if any(c.notified for c in changes):
            self.notify.kick()

    # -- people ----------------------------------------------------------------------------------

    def ack(self, alert_id: str, by: str, note: str | None = None) -> Alert:
        """open → acknowledged; raises AlertNotFound (404) or TransitionError (409)."""
        change = self.lifecycle.acknowledge(alert_id, by, note)
        self._after([change])
        return change.alert

    def close(self, alert_id: str, by: str, note: str | None = None) -> Alert:
        """Any state but closed → closed; raises AlertNotFound (404) or TransitionError (409)."""
        change = self.lifecycle.close(alert_id, by, note)
        self._after([change])
        return change.alert

    def latest(self, site: str) -> dict[str, LatestValue]:
        """metric → (value, ts_ms, device): the newest reading per metric the engine has seen."""
        with self._lock:
            return self.engine.latest(site)

    # -- scheduler jobs --------------------------------------------------------------------------

    def know_devices(self, seen: Iterable[tuple[str, str, int]]) -> int:
        """Seed the deadman with (site, device, last seen ms) from before this process; returns how many."""
        with self._lock:
            return sum(self.engine.know_device(site, device, t) for site, device, t in seen)

    def sweep(self, at_ms: int | None = None) -> list[Change]:
        """Deadman check now (or at ``at_ms``)."""
        with self._lock:
            signals = self.engine.sweep(now_ms() if at_ms is None else at_ms)
            ticket = self.book.submit(signals) if signals else None
        return self._wait(ticket)

    def escalate(self, at_ms: int | None = None) -> list[Change]:
        """Escalation steps due now, then flapping alerts that calmed down."""
        changes = self.escalator.run(at_ms)
        settled = self.lifecycle.settle_flapping(at_ms)
        self._after(changes)
        if settled:
            self.notify.kick()
        return changes

    def silence_expiry(self, at_ms: int | None = None) -> int:
        """Notifies still-firing alerts whose notifications a now-ended silence held back."""
        return self.notify.release_silenced(at_ms)

    def housekeeping(self, at_ms: int | None = None) -> None:
        """Drops silences that ended and finished outbox rows a week after the fact."""
        cutoff = (now_ms() if at_ms is None else at_ms) - KEEP_FINISHED_MS
        self.state.purge_silences(cutoff)
        self.state.purge_outbox(cutoff)

    def start(self, scheduler: BackgroundScheduler | None = None) -> None:
        """Registers the deadman sweep, escalation and housekeeping jobs on ``scheduler`` (its own
        BackgroundScheduler when None), and starts delivery when the notify service is its own."""
        if scheduler is None:
            scheduler, self._own_scheduler = BackgroundScheduler(timezone="UTC"), True
            scheduler.start()
        self._scheduler = scheduler
        sweep_s, escalation_s = self._intervals
        for name, func, every in (("deadman-sweep", self._job(self.sweep), sweep_s),
                                  ("escalation", self._job(self.escalate), escalation_s),
                                  ("silence-expiry", self._job(self.silence_expiry), SILENCE_EXPIRY_S),
                                  ("alerting-housekeeping", self._job(self.housekeeping), HOUSEKEEPING_S)):
            job = scheduler.add_job(func, "interval", seconds=every, id=f"{name}-{id(self)}",
                                    max_instances=1, coalesce=True, replace_existing=True)
            self._job_ids.append(job.id)
        self.book.start()
        if self._owns_notify:
            self.notify.start()

    @staticmethod
    def _job(func: Callable[[], object]) -> Callable[[], None]:
        """Wraps a job so that a failure is logged and the next run still happens."""
        def run() -> None:
            try:
                func()
            except SQLAlchemyError as err:
                log.warning("alerting: %s skipped, state database unavailable (%s)", func.__name__,
                            type(err).__name__)
            except Exception:
                log.exception("alerting: %s failed", func.__name__)
        run.__name__ = func.__name__
        return run

    def stop(self) -> None:
        """Removes the jobs and drains the book writer; then, when the notify service is its own,
        stops delivery (sends in progress finish) and ends SSE subscriptions."""
        if self._scheduler is not None:
            for job_id in self._job_ids:
                with contextlib.suppress(JobLookupError):  # gone with a scheduler shut down first
                    self._scheduler.remove_job(job_id)
            if self._own_scheduler:
                self._scheduler.shutdown(wait=True)
            self._scheduler, self._job_ids = None, []
        self.book.stop()  # what is queued reaches the book or the journal; delivery sends it after
        if self._owns_notify:
            self.notify.stop()
