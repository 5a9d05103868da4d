"""One ``serve`` process: the parts, built from Settings and the District, started and stopped in order.

Start: InfluxDB writer (and its spool replay) → state store, notify (the process's delivery and
SSE broadcaster, handed to alerting and supervision), alerting, supervision → ingest (MQTT).
Stop, the reverse where data flows: ingest stops taking messages and drains into the writer,
whose flush lets the acks go out; then supervision and alerting (their events still reach the
outbox and the writer); then notify (sends in progress finish, SSE streams end); then the
writer drains to InfluxDB or the spool; the API is stopped last by the caller, so /health
answers during the drain.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from alerting.journal import Journal, JournalError
from alerting.restore import WindowRestorer
from alerting.service import AlertService
from api.context import ApiContext
from domain.config import DeadmanRule
from domain.district import District
from domain.settings import Settings
from notify import NotifyService, Planner, TargetPolicy
from notify.relay import Relay
from service.cluster import Cluster, LeaseFence
from service.engines import PartitionedEngine
from service.hazards import start_supervision
from service.ingests import IngestSet
from service.jobs import ClusterScheduler
from store.deadletters import DeadLetters
from store.history import HistoryReader, ensure_downsampling
from store.influx import InfluxClient, InfluxError, InfluxUnavailable, InfluxWriter
from store.retention import Retention, ensure_raw_retention, expire_raw
from store.state import StateStore
from store.state.leases import PartitionsMismatch
from supervision.service import SupervisionService
from transport.mqtt import MqttClient, MqttConnectError, MqttUnreachable

log = logging.getLogger(__name__)
PING_TTL_S = 2.0


class StartupError(Exception):
    """A part could not start for a reason the operator must fix; the message says which and why."""


@dataclass
class _Ping:
    """InfluxDB reachability for /health, cached so that health checks cannot hammer it."""

    client: InfluxClient
    at: float = 0.0
    ok: bool = False
    detail: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> tuple[bool, str]:
        with self.lock:
            if time.monotonic() - self.at > PING_TTL_S:
                try:
                    self.ok, self.detail = True, f"InfluxDB {self.client.ping()}"
                except InfluxError as exc:
                    self.ok, self.detail = False, str(exc)
                self.at = time.monotonic()
            return self.ok, self.detail


class Runtime:
    """Builds every part without connecting anywhere; ``start()`` connects, ``stop()`` drains."""

    def __init__(self, settings: Settings, district: District, admin_token: str,
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.district = district
        self.admin_token = admin_token
        self.registry = registry if registry is not None else CollectorRegistry()
        data = settings.data_dir
        db = settings.influx_database(district.name)
        creds = settings.influx_credentials()
        self.dead_letters = DeadLetters(data / "deadletters")
        # The writer's client is used by the writer thread alone: one request at a time.
        self.influx_write = InfluxClient(settings.influx_url, db, creds)
        self.influx = InfluxClient(settings.influx_url, db, creds)  # API reads and health
        self.writer = InfluxWriter(self.influx_write, data / "spool" / db, registry=self.registry,
                                   dead_letters=self.dead_letters)
        # One publisher per process: with several sharing a district (PostgreSQL) a shared client id
        # would make the broker drop each for the next. It keeps no session, so any id will do.
        notify_id = f"safewatch-{district.name}-notify"
        if not settings.state_url.startswith("sqlite"):
            notify_id += f"-{os.getpid()}-{secrets.token_hex(2)}"
        self.publisher = MqttClient(settings.mqtt_url, notify_id)
        self.targets = TargetPolicy.from_settings(settings, district.name)  # contract section 6
        self.state: StateStore | None = None
        self.notify: NotifyService | None = None
        self.alerts: AlertService | None = None
        self.supervision: SupervisionService | None = None
        self.relay: Relay | None = None
        self.ingests: IngestSet | None = None  # one ingest per held partition
        self.cluster: Cluster | None = None  # the partition leases (contract section 12)
        self.scheduler = ClusterScheduler(settings.role_set, timezone="UTC")
        self._ping = _Ping(self.influx)
        self._retention: Retention | None = None  # set once the raw policy is set up
        self._retention_setting: Retention | None = None  # what the settings ask for
        self._rollup_done = False
        self._retention_pending = True  # until both policies are set, or the server has none
        self._stopped = threading.Event()
        self._started = False
        Gauge("safewatch_mqtt_connected", "1 while the ingest MQTT connections (one per held partition) are up",
              registry=self.registry).set_function(lambda: float(self.ingests is not None and self.ingests.connected()))

    def start(self, mqtt_timeout: float = 10.0) -> None:
        """Raises StartupError for what the operator must fix (refused credentials, missing bucket,
        unusable state database); an unreachable broker or InfluxDB only degrades health."""
        self._started = True
        try:
            self.influx_write.ensure_database()
        except InfluxUnavailable as exc:
            log.warning("%s; readings will be spooled until it answers", exc)
        except InfluxError as exc:
            raise StartupError(str(exc)) from exc
        self.writer.start()
        self._ensure_downsampling()
        try:
            self.state = StateStore(self.settings.state_url)
        except Exception as exc:  # SQLAlchemy's errors, a bad URL (ValueError), a migration failure
            raise StartupError(f"SAFEWATCH_STATE_URL={self.settings.state_url}: {exc}") from exc
        self._connect(self.publisher, mqtt_timeout)
        try:  # alert changes wait here while the state database is away (contract section 7)
            journal = Journal(self.settings.data_dir / "journal" / self.district.name)
        except JournalError as exc:
            raise StartupError(f"SAFEWATCH_DATA_DIR={self.settings.data_dir}: {exc}") from exc
        clustered = self.state.backend == "postgresql"
        self.notify = NotifyService(self.state, self.targets, self.registry, publisher=self.publisher)
        self.alerts = AlertService(self.district, self.state, self.writer, registry=self.registry,
                                   notify=self.notify, journal=journal, dead_letters=self.dead_letters,
                                   resolve_orphans=not clustered)
        if clustered:  # the SSE stream also carries what other processes commit (their rows are theirs)
            self.relay = Relay(self.state, self.notify.broadcaster,
                               Planner(self.district.name, self.district.tz, mqtt_topics=False).notice)
            self.relay.start()
        if clustered:  # each held partition gets an engine of its own, restored at takeover
            self.alerts.engine = PartitionedEngine(self.district, self.settings.partitions)
        else:
            self._seed_deadman(self.alerts)
            self._restore_windows(self.alerts)
        if clustered:  # district-wide jobs run only under the scheduler lease (service.cluster)
            self.scheduler.lease = lambda: self.cluster is not None and self.cluster.holds_scheduler()
        self.scheduler.start()
        self.alerts.start(self.scheduler)
        # Hourly, and soon after start (a district-wide job: one process at a time).
        self.scheduler.add_job(self.expire_readings, "interval", hours=1, id="retention",
                               next_run_time=datetime.now(UTC) + timedelta(seconds=30),
                               max_instances=1, coalesce=True, replace_existing=True)
        self.supervision = start_supervision(self.district, self.state, self.alerts, self.notify, self.scheduler)
        if "delivery" in self.settings.role_set:  # otherwise another process delivers from the shared outbox
            self.notify.start()
        self._start_partitions(self.alerts, clustered, mqtt_timeout)
        log.info("serving district %s: %d sites, %d rules; MQTT %s, InfluxDB %s database %s; roles %s",
                 self.district.name, len(self.district.sites), len(self.district.rules),
                 self.publisher.url_for_logs, self.settings.influx_url, self.influx.database, self.settings.roles)

    def _start_partitions(self, alerts: AlertService, clustered: bool, mqtt_timeout: float) -> None:
        """Leases (PostgreSQL) or every partition held by this one process (SQLite), one ingest each."""
        assert self.state is not None
        n = self.settings.partitions
        engine = alerts.engine if isinstance(alerts.engine, PartitionedEngine) else None
        self.ingests = IngestSet(self.district, self.state, n, self.settings.mqtt_url, self.writer,
                                 alerts.submit_batch, self.dead_letters, self.registry, engine=engine,
                                 seen=self._devices_seen, mqtt_timeout=mqtt_timeout,
                                 restore_windows=WindowRestorer(self.district, self.influx),
                                 resolve=alerts.apply_signals)
        # With leases, nothing is claimed while the journal holds entries (a start-up replay that
        # paused, a database outage): a claim raises the epoch its entries were recorded under,
        # and they would be skipped as superseded (contract section 7). The book writer retries.
        self.cluster = Cluster(self.state, n, self.settings.lease_ttl_s, self.settings.role_set, self.ingests,
                               static=not clustered, registry=self.registry,
                               ready=lambda: not clustered or alerts.book.journal_depth == 0)
        if clustered:
            alerts.lifecycle.fence = LeaseFence(self.cluster, n, self.district.sites)
            self.ingests.may_reconnect = self.cluster.may_reconnect
        try:
            self.cluster.start()
        except PartitionsMismatch as exc:
            raise StartupError(str(exc)) from exc

    def _devices_seen(self, sites: list[str]) -> list[tuple[str, str, int]]:
        """(site, device, last seen ms) from InfluxDB for a partition taken over: its deadman memory."""
        families = {self.district.sites[s].family for s in sites}
        try:
            mine = set(sites)
            return [x for x in HistoryReader(self.influx, self.district).last_seen(sorted(families)) if x[0] in mine]
        except InfluxError as exc:
            log.warning("deadman not seeded from InfluxDB (%s) for %d sites", exc, len(sites))
            return []

    def _ensure_downsampling(self) -> None:
        try:
            self._retention_setting = Retention.parse(self.settings.retention_raw, self.settings.retention_rollup)
        except ValueError as exc:
            raise StartupError(str(exc)) from exc
        self._set_up_retention(self.influx_write)

    def _set_up_retention(self, client: InfluxClient) -> None:
        """The hourly rollup and the raw policy (``store.retention``), each until it is in place.
        InfluxDB may be down at start (readings are spooled meanwhile), so the hourly job calls
        this again until both are set, or until the server turns out to be 2.x/3.x, which has
        no retention policies over the v1 API (``ensure_*`` logged that)."""
        wanted = self._retention_setting
        if wanted is None or not self._retention_pending:
            return
        if not self._rollup_done:
            try:
                self._rollup_done = ensure_downsampling(client, self.district, rollup_hours=wanted.rollup_h)
            except InfluxError as exc:  # history then reads raw points: slower, still right
                log.warning("downsampling not set up: %s", exc)
        if self._retention is None and ensure_raw_retention(client, wanted):
            self._retention = wanted
        if self._rollup_done and self._retention is not None:
            self._retention_pending = False
            return
        try:
            version = client.ping()
        except InfluxError:
            log.info("retention: InfluxDB unavailable; its policies are set up at the next hourly run")
            return
        if not version.startswith("1."):
            self._retention_pending = False  # nothing to set there: the bucket's own retention applies

    def expire_readings(self) -> None:
        """The retention job: raw shards past ``SAFEWATCH_RETENTION_RAW`` go (see ``store.retention``),
        after setting the policies up if InfluxDB was away when this process started."""
        if self._retention_pending:
            self._set_up_retention(self.influx)
        if self._retention is not None:
            try:
                expire_raw(self.influx, self._retention)
            except InfluxError as exc:
                log.warning("retention: old raw shards not dropped this time (%s)", exc)

    def _restore_windows(self, alerts: AlertService) -> None:
        """Trend windows, pending ``for`` timers and latest values from InfluxDB, before ingest subscribes."""
        try:
            alerts.restore_windows(None, self.influx)
        except InfluxError as exc:
            log.warning("rule windows not restored from InfluxDB (%s): trend windows and pending "
                        "timers start empty", exc)

    def _seed_deadman(self, alerts: AlertService) -> None:
        """Tell the deadman which devices were alive before this process, so one that died around
        a restart is still reported silent."""
        families = {r.family for r in self.district.config.rules if isinstance(r, DeadmanRule)}
        if "*" in families:
            families = {s.family for s in self.district.sites.values()}
        families &= {s.family for s in self.district.sites.values()}
        if not families:
            return
        try:
            seen = HistoryReader(self.influx, self.district).last_seen(sorted(families))
        except InfluxError as exc:
            log.warning("deadman not seeded from InfluxDB (%s): devices silent since before this start "
                        "are reported only once they have sent again", exc)
            return
        log.info("deadman: %d devices known from InfluxDB", alerts.know_devices(seen))

    @staticmethod
    def _connect(client: MqttClient, timeout: float) -> None:
        try:
            client.connect(timeout)
        except MqttUnreachable as exc:
            log.warning("%s; retrying in the background", exc)
            client.connect_in_background()
        except MqttConnectError as exc:
            raise StartupError(str(exc)) from exc

    def _stop_scheduler(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def api_context(self) -> ApiContext:
        return ApiContext(self.district, self.settings, self.admin_token, self.registry, self.health,
                          state=self.state, influx=self.influx, alerts=self.alerts, targets=self.targets,
                          supervision=self.supervision)

    def health(self) -> tuple[str, dict[str, Any]]:
        influx_ok, influx_detail = self._ping.get()
        write_error = self.writer.last_error
        if write_error is not None:  # fresher than the cached ping: the last write failed
            influx_ok, influx_detail = False, write_error
        spool = self.writer.spool_depth
        components: dict[str, Any] = {
            "mqtt": self.ingests.health() if self.ingests else {"ok": False, "detail": "not started"},
            "influxdb": {"ok": influx_ok, "detail": influx_detail, "database": self.influx.database,
                         "spool_depth": spool},
        }
        state_ok, state_detail = self.state.ping() if self.state else (False, "not started")
        components["state"] = {"ok": state_ok, "detail": state_detail,
                               "journal_depth": self.alerts.book.journal_depth if self.alerts else 0}
        if self.cluster is not None and self.cluster.waiting:
            components["state"] |= {"ok": False, "detail": f"{state_detail}; the alert journal is being "
                                    "replayed: no partition is claimed until it is done"}
        ok = all(c["ok"] for c in components.values())
        return ("ok" if ok else "degraded"), components

    def stop(self, timeout: float = 30.0) -> None:
        """Drain and stop everything started; safe to call twice and after a failed start."""
        if self._stopped.is_set() or not self._started:
            self._stopped.set()
            return
        self._stopped.set()
        t0 = time.monotonic()
        cluster, alerts, notify, state = self.cluster, self.alerts, self.notify, self.state
        steps: list[tuple[str, Any]] = [
            # Each partition drains (its acks go out), then its lease is released for the others.
            ("partitions", (lambda: cluster.stop(timeout)) if cluster else None),
            ("relay", self.relay.stop if self.relay else None),
            ("supervision", self.supervision.stop if self.supervision else None),
            ("alerting", alerts.stop if alerts else None),
            # After both owners: their last events are in the outbox; MQTT sends need the publisher.
            ("notify", notify.stop if notify else None),
            ("scheduler", self._stop_scheduler),
            ("writer", lambda: self.writer.stop(timeout)),
            ("publisher", self.publisher.close),
            ("state", state.close if state else None),
            ("influx", self.influx.close),
            ("influx writer", self.influx_write.close),
            ("dead letters", self.dead_letters.close),
        ]
        for name, step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception:  # one part failing to stop must not keep the others running
                log.exception("stopping %s failed", name)
        log.info("stopped in %.1fs (spool holds %d points)", time.monotonic() - t0, self.writer.spool_depth)
