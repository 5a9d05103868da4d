"""Ingest: MQTT messages in, validated batches out to InfluxDB and the alert engine.

Threads: paho's network thread only wraps each message and appends it to a bounded buffer
(blocking there when it is full, which holds back the broker). One worker thread takes
whatever is waiting, decodes and validates it, encodes line protocol, hands the lines to the
``InfluxWriter`` and the typed ``Batch`` to ``on_batch``. The messages are acknowledged to the
broker only once both are durable: the writer's callback (lines in InfluxDB or the spool) and,
when ``on_batch`` returns a ``Pending`` (the alert book writer's ticket), its completion (the
book transaction committed, or the signals journaled). A crash at any point makes the broker
redeliver what was not yet safe.

The broker sends only so many unacknowledged QoS 1 messages (Mosquitto's
``max_inflight_messages`` for MQTT 3.1.1, our Receive Maximum on MQTT 5). Acks that wait for
a 200 ms flush would throttle it, so the worker asks the writer to flush early once half that
window is outstanding, or as soon as the inflow pauses while acks are owed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from domain.clock import now_ms as wall_ms  # the one clock (``now_ms`` names a parameter here)
from domain.district import District
from domain.readings import Batch, DeviceStatus, Reading
from ingest.buffer import BoundedBuffer
from ingest.decode import BAD_TOPIC, REASONS, Decoder
from store.deadletters import DeadLetters
from store.lineproto import ReadingEncoder
from transport.mqtt import Message, MqttClient

log = logging.getLogger(__name__)


class Writer(Protocol):
    """The part of ``store.influx.InfluxWriter`` ingest uses."""

    def put(self, lines: list[bytes], on_durable: Callable[[], None] | None = None) -> None: ...

    def request_flush(self) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...


class Pending(Protocol):
    """What ``on_batch`` may return: something that becomes durable later (``alerting.bookwriter.Ticket``)."""

    def when_done(self, callback: Callable[[], None]) -> None: ...


class _Both:
    """Calls ``then`` once ``done`` has been called ``parts`` times (from any threads)."""

    def __init__(self, parts: int, then: Callable[[], None]) -> None:
        self._left, self._then = parts, then
        self._lock = threading.Lock()

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            fire = self._left == 0
        if fire:
            self._then()


class _Metrics:
    def __init__(self, registry: CollectorRegistry | None, ingest: Ingest) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.received = Counter("safewatch_messages_received", "MQTT messages taken in", registry=reg)
        self.accepted = Counter("safewatch_readings_accepted", "Readings validated and sent to InfluxDB",
                                registry=reg)
        self.statuses = Counter("safewatch_device_statuses", "Device online/offline messages accepted",
                                registry=reg)
        self.rejected = Counter("safewatch_readings_rejected",
                                "Refused messages, values or array elements, by reason", ["reason"], registry=reg)
        for reason in REASONS:
            self.rejected.labels(reason)  # every reason shows up in /metrics, also at zero
        self.redeliveries = Counter("safewatch_redeliveries", "Messages the broker sent again (DUP flag)",
                                    registry=reg)
        self.handoff_errors = Counter("safewatch_batch_handoff_errors",
                                      "Batches the alert engine hand-off raised on", registry=reg)
        Gauge("safewatch_ingest_queue_depth", "Messages waiting between the MQTT thread and the worker",
              registry=reg).set_function(lambda: len(ingest.buffer))
        Gauge("safewatch_ingest_unacked", "Messages taken in but not yet acknowledged to the broker",
              registry=reg).set_function(lambda: ingest.unacked)


class Ingest:
    """Subscribes ``{district}/+/+/+/telemetry`` and ``.../status`` at QoS 1 with manual acks."""

    def __init__(self, district: District, client: MqttClient, writer: Writer,
                 on_batch: Callable[[Batch], Pending | None], dead_letters: DeadLetters,
                 registry: CollectorRegistry | None = None, *, queue_messages: int = 20_000,
                 queue_bytes: int = 64 * 1024 * 1024, max_batch: int = 2_000, ack_window: int = 1000) -> None:
        self.district = district
        self.client = client
        self.writer = writer
        self.on_batch = on_batch
        self.dead_letters = dead_letters
        self.decoder = Decoder(district)
        self.encoder = ReadingEncoder()
        self.buffer: BoundedBuffer[Message] = BoundedBuffer(queue_messages, queue_bytes)
        self.max_batch = max_batch
        self.flush_at_unacked = max(1, ack_window // 2)
        self.filters = [f"{district.name}/+/+/+/telemetry", f"{district.name}/+/+/+/status"]
        self._unacked = 0
        self._unacked_lock = threading.Lock()
        self._accepting = False
        self._running = False
        self._thread: threading.Thread | None = None
        self._m = _Metrics(registry, self)

    @property
    def unacked(self) -> int:
        return self._unacked

    def start(self) -> None:
        """Start the worker and subscribe (now, or on connect if the client is not yet connected)."""
        self._accepting = self._running = True
        self._thread = threading.Thread(target=self._work, name="ingest", daemon=True)
        self._thread.start()
        self.client.subscribe_batches(self.filters, 1, self._on_messages)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop taking messages, process and flush what was taken, let the acks go out.

        Messages arriving after this are left unacknowledged: the broker keeps them in the
        persistent session for the next start.
        """
        self._accepting = False
        self.buffer.close()
        deadline = time.monotonic() + timeout
        if self._thread is not None:
            self._running = False
            self._thread.join(max(0.1, deadline - time.monotonic()))
            if self._thread.is_alive():
                log.error("ingest worker still busy after %.0fs", timeout)
        if not self.writer.flush(max(0.1, deadline - time.monotonic())):
            log.error("InfluxDB writer did not drain within %.0fs; the broker will redeliver the rest", timeout)
        while self._unacked and time.monotonic() < deadline:  # acks also wait for the alert book
            time.sleep(0.02)

    # -- network thread ------------------------------------------------------------------

    def _on_messages(self, msgs: list[Message]) -> None:
        if self._accepting:
            size = sum(len(m.payload) for m in msgs) + 250 * len(msgs)  # + topic and object overhead
            self.buffer.put_many(msgs, size, lambda: self._accepting)

    # -- worker thread -------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            msgs = self.buffer.take(self.max_batch, 0.01)
            if msgs:
                try:
                    self._process(msgs)
                except Exception:  # a bug here must cost one batch, not the whole ingest
                    log.exception("ingest failed on a batch of %d messages; they stay unacknowledged", len(msgs))
            elif not self._running:
                return
            elif self._unacked:
                self.writer.request_flush()  # inflow paused: maybe the broker waits for our acks

    def _process(self, msgs: list[Message]) -> None:
        now_ms = wall_ms()
        decode, encode = self.decoder.decode, self.encoder.encode
        readings: list[Reading] = []
        statuses: list[DeviceStatus] = []
        lines: list[bytes] = []
        acks: list[tuple[int, int]] = []
        redelivered = 0
        for m in msgs:
            if m.dup:
                redelivered += 1
            d = decode(m.topic, m.payload, m.received_ms, now_ms)
            for r in d.readings:
                try:
                    lines.append(encode(r))
                except ValueError as exc:  # cannot happen for validated ids; kept as a last guard
                    self._reject(m, BAD_TOPIC, str(exc), 1)
                    continue
                readings.append(r)
            if d.status is not None:
                statuses.append(d.status)
            for rej in d.rejections:
                self._reject(m, rej.reason, rej.detail, rej.count)
            if m.qos:
                acks.append((m.connection, m.mid))
        self._m.received.inc(len(msgs))
        if redelivered:
            self._m.redeliveries.inc(redelivered)
        with self._unacked_lock:
            self._unacked += len(acks)
        # Acknowledged once the readings and the alert-book changes they raise are both durable.
        both = _Both(2, lambda: self._ack(acks))
        self.writer.put(lines, both.done)
        if self._unacked >= self.flush_at_unacked:
            self.writer.request_flush()
        self._m.accepted.inc(len(readings))
        if statuses:
            self._m.statuses.inc(len(statuses))
        pending: Pending | None = None
        if readings or statuses:
            try:
                pending = self.on_batch(Batch(tuple(readings), tuple(statuses)))
            except Exception as exc:
                # A bug past the engine (which isolates its own failures): holding the acks back
                # would stall the broker's window on every redelivery of the same batch, so the
                # messages are acknowledged, their readings being stored, and each is kept in the
                # dead letters saying its alert changes were never recorded.
                self._m.handoff_errors.inc()
                log.exception("alert engine hand-off failed on a batch of %d readings; its %d messages are "
                              "in the dead letters", len(readings), len(msgs))
                detail = (f"the alert engine hand-off failed ({type(exc).__name__}: {exc}): its readings are "
                          "stored, the alert changes they raise were not recorded")
                for m in msgs:
                    self.dead_letters.add("handoff_error", m.topic, m.payload, detail, m.received_ms)
        if pending is None:
            both.done()
        else:
            pending.when_done(both.done)

    def _reject(self, m: Message, reason: str, detail: str, count: int) -> None:
        self._m.rejected.labels(reason).inc(count)
        suffix = f" (and {count - 1} more in this message)" if count > 1 else ""
        self.dead_letters.add(reason, m.topic, m.payload, detail + suffix, m.received_ms)

    def _ack(self, acks: list[tuple[int, int]]) -> None:
        self.client.ack_many(acks)
        with self._unacked_lock:
            self._unacked -= len(acks)
