"""MQTT for the whole project: ``Message``, ``MqttClient`` and the errors; with its private
helper ``transport._paho``, the only code that imports paho-mqtt.

Ingest, the MQTT notifier and the simulators see only ``Message`` and ``MqttClient``.

Protocol choice. Both versions keep a persistent session: MQTT 3.1.1 with
``clean_session=False``, MQTT 5 with ``clean_start=False`` and a session expiry (a week).
Measured on the 2-core dev machine against Mosquitto 2.0.11, QoS 1 with manual acks, a
subscriber draining a backlog: MQTT 3.1.1 through the fast path of ``transport._paho`` takes
9-16 µs of CPU per message, MQTT 5 84 µs (12,000 messages/s), because paho decodes MQTT 5
properties into objects for every PUBLISH and the fast path cannot skip that. So ``serve``
uses 3.1.1. The price: how many unacknowledged messages the broker sends us is then the
broker's ``max_inflight_messages`` (Mosquitto's default is 20; the stack sets 1000), whereas
MQTT 5 lets the client announce its Receive Maximum (Mosquitto honours up to 65535).
"""

from __future__ import annotations

import itertools
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, cast

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from domain.settings import mqtt_parts
from transport._paho import FastPahoClient, topic_bytes

log = logging.getLogger(__name__)
_CONNECTIONS = itertools.count(1)  # process-wide, so no two connections share an id

Protocol = Literal["3.1.1", "5"]
WEEK_S = 7 * 24 * 3600
BATCH_MAX = 2000  # messages per list handed to a batch subscriber (see _collect)


class Message(NamedTuple):
    """One received PUBLISH, detached from paho.

    Immutable like a frozen dataclass, but built in a third of the time: one is made for every
    message on the hot path.
    """

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool
    received_ms: int
    connection: int = 0  # which connection delivered it (unique in the process): acks are valid only on it


@dataclass(frozen=True, slots=True)
class Will:
    """The last will the broker publishes when the client vanishes without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


class MqttError(Exception):
    """Anything MQTT that the caller may want to handle as one kind of failure."""


class MqttConnectError(MqttError):
    """The broker could not be reached or refused the connection; the message says why."""


class MqttUnreachable(MqttConnectError):
    """No broker answered at the address (down, wrong port, network); worth retrying."""


class MqttTimeout(MqttError):
    """A connect, subscribe or publish did not complete in time."""


# MQTT 3.1.1 CONNACK return codes, for callers holding a bare number.
_CONNACK_V3 = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


def reason_text(code: ReasonCode | int) -> str:
    """A reason or return code as words a log reader understands."""
    if isinstance(code, ReasonCode):  # paho maps 3.1.1 return codes onto these too
        return f"{code.getName().lower()} (code {code.value})"
    if isinstance(code, MQTTErrorCode):
        return f"{paho.error_string(code)} (rc {int(code)})"
    return _CONNACK_V3.get(code, f"code {code}")


MessageHandler = Callable[[Message], None]
BatchHandler = Callable[[list[Message]], None]


class MqttClient:
    """A paho client with a network thread, reconnect with backoff and a stable identity.

    ``manual_ack=True`` leaves QoS 1 acknowledgement to the caller (``ack``), so a message
    the process has not made durable is redelivered after a crash. ``max_inflight`` bounds
    outgoing QoS 1 messages awaiting PUBACK; 0, the default, means no bound beyond the 65535
    packet ids, and is also paho's fast path (with a bound, paho rescans every queued message
    on each PUBACK, which collapses to ~100 acks/s with tens of thousands queued).
    ``receive_maximum`` is announced on MQTT 5 for incoming messages; on 3.1.1 the broker's
    ``max_inflight_messages`` alone decides how many unacknowledged messages it sends us.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        clean_session: bool = True,
        manual_ack: bool = False,
        max_inflight: int = 0,
        receive_maximum: int = 65535,
        will: Will | None = None,
        protocol: Protocol = "3.1.1",
        keepalive: int = 30,
        session_expiry_s: int = WEEK_S,
        reconnect_delay: tuple[int, int] = (1, 30),
        ca_file: str | None = None,
        on_connection_change: Callable[[bool], None] | None = None,
        reconnect_check: Callable[[], bool] | None = None,
    ) -> None:
        if not 0 <= max_inflight <= 65535:
            raise ValueError(f"max_inflight={max_inflight}: expected 0..65535 (MQTT packet ids are 16-bit)")
        if not 1 <= receive_maximum <= 65535:
            raise ValueError(f"receive_maximum={receive_maximum}: expected 1..65535")
        self.host, self.port, tls, user, password = mqtt_parts(url)
        self.url_for_logs = f"{'mqtts' if tls else 'mqtt'}://{self.host}:{self.port}"
        self.client_id = client_id
        self._protocol = protocol
        self._clean = clean_session
        self._keepalive = keepalive
        self._session_expiry = session_expiry_s
        self._receive_maximum = receive_maximum
        self._on_change = on_connection_change
        # Asked on the network thread when the connection drops: False ends the network loop
        # instead of reconnecting (a partition whose lease is gone must not take the session back).
        self._reconnect_check = reconnect_check
        self._filters: list[tuple[str, int]] = []
        self._handler: MessageHandler | None = None
        self._batch_handler: BatchHandler | None = None
        self._batch: list[Message] = []
        self._connected = threading.Event()
        self._first_result: tuple[bool, str | None] | None = None  # (ok, refusal or None: unreachable)
        self._first_done = threading.Event()
        self._closed = False
        self._connection = 0
        self._subscribed = threading.Event()
        self._sub_mid = -1

        v5 = protocol == "5"
        self._client = FastPahoClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=None if v5 else clean_session,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=manual_ack,
            reconnect_on_failure=True,
        )
        self._client.max_inflight_messages_set(max_inflight)
        self._client.reconnect_delay_set(*reconnect_delay)
        if user is not None:
            self._client.username_pw_set(user, password)
        if tls:
            self._client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        if will is not None:
            self._client.will_set(will.topic, will.payload, will.qos, will.retain)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_message = self._on_message
        self._client.raw_handler = self._deliver  # the fast path's messages: the topic as bytes
        self._client.on_subscribe = self._on_subscribe

    # -- connection ----------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and start the network thread; later drops reconnect by themselves.

        Raises MqttConnectError when the broker refuses (bad credentials, ...) or cannot be
        reached, MqttTimeout when it does not answer within ``timeout`` seconds.
        """
        try:
            self._client.connect_async(self.host, self.port, self._keepalive, **self._connect_kwargs())
        except (OSError, ValueError) as exc:
            raise MqttConnectError(f"MQTT broker {self.url_for_logs}: {exc}") from exc
        self._client.loop_start()
        deadline = time.monotonic() + timeout
        if not self._first_done.wait(timeout):
            self._stop_loop()
            raise MqttTimeout(f"MQTT broker {self.url_for_logs} did not answer within {timeout:g}s")
        assert self._first_result is not None
        ok, why = self._first_result
        if ok:
            # Messages published right after connect() must find the subscription in place.
            if self._filters and not self._subscribed.wait(max(0.0, deadline - time.monotonic())):
                raise MqttTimeout(f"MQTT broker {self.url_for_logs} did not confirm the subscription to "
                                  f"{[f for f, _ in self._filters]} within {timeout:g}s")
            return
        self._stop_loop()
        self._first_done.clear()
        if why is None:
            raise MqttUnreachable(f"MQTT broker {self.url_for_logs} unreachable (is it running there?)")
        raise MqttConnectError(f"MQTT broker {self.url_for_logs} refused client {self.client_id!r}: {why}")

    def connect_in_background(self) -> None:
        """Start the network thread and keep trying to connect with backoff; never raises."""
        self._first_done.set()  # nobody waits for the first result
        self._client.connect_async(self.host, self.port, self._keepalive, **self._connect_kwargs())
        self._client.loop_start()

    def _connect_kwargs(self) -> dict[str, Any]:
        if self._protocol != "5":
            return {}  # 3.1.1 takes clean_session from the constructor
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if self._clean else self._session_expiry
        props.ReceiveMaximum = self._receive_maximum
        # paho's default, clean start on the first connect only, would drop the broker's session.
        return {"clean_start": self._clean, "properties": props}

    @property
    def is_connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (queued acks and publishes go out first) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._connected.is_set():
            self._client.disconnect()
            deadline = time.monotonic() + timeout
            while self._connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
        self._stop_loop()

    def abort(self) -> None:
        """Drop the connection without DISCONNECT, as a device losing power does, and stay down.

        The broker sees the connection die and publishes the will (a clean ``close`` suppresses
        it). The network thread stops, so nothing reconnects until ``connect`` or
        ``connect_in_background``. Messages not yet written are lost with the connection, as
        on the device. Safe to call twice or before connecting; not from a handler (it joins
        the network thread).
        """
        was_closed = self._closed
        self._closed = True  # _on_disconnect: a drop on purpose, not a lost connection to report
        try:
            self._client.stop_soon()
            self._shutdown_socket()
            self._stop_loop()
            # The network thread may have stopped between two reads without seeing the end of
            # the stream: read it here, so paho closes the socket and reports the disconnect.
            for _ in range(100):
                if self._client.socket() is None:
                    break
                self._client.loop_read()
        finally:
            self._closed = was_closed
        self._first_done.clear()  # the next connect() waits for its own answer
        self._first_result = None
        log.info("MQTT connection of %r to %s aborted without DISCONNECT", self.client_id, self.url_for_logs)

    def _shutdown_socket(self) -> None:
        sock = self._client.socket()
        try:
            if isinstance(sock, ssl.SSLSocket):
                # The plain TCP shutdown, sending no TLS close_notify: SSLSocket.shutdown would
                # also drop the TLS object under the network thread mid-read (ValueError there).
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            elif sock is not None:
                cast(socket.socket, sock).shutdown(socket.SHUT_RDWR)  # transport._paho's wrapper passes it on
        except OSError:
            pass  # already gone: the broker has seen the connection die

    def _stop_loop(self) -> None:
        self._client.loop_stop()

    # -- subscribe, ack, publish ----------------------------------------------------------

    def subscribe_batches(self, filters: Sequence[str], qos: int, on_messages: BatchHandler) -> None:
        """Like ``subscribe``, but messages arrive in lists: everything one read from the socket
        brought (up to about a thousand), so a consumer pays its locks once per list."""
        self._batch_handler = on_messages
        self._client.after_read = self._deliver_batch
        self.subscribe(filters, qos, self._collect)

    def _collect(self, msg: Message) -> None:
        self._batch.append(msg)
        # One round of reads can bring tens of MB when the broker does not hold back (Mosquitto
        # sends past max_inflight_messages): hand lists on at BATCH_MAX, so a consumer that
        # blocks (ingest's bounded buffer) stops the reading here and memory stays bounded.
        if len(self._batch) >= BATCH_MAX:
            self._deliver_batch()

    def _deliver_batch(self) -> None:
        if self._batch:
            batch, self._batch = self._batch, []
            handler = self._batch_handler
            assert handler is not None
            try:
                handler(batch)
            except Exception:  # an escaping exception would kill paho's network thread
                log.exception("MQTT batch handler failed on %d messages", len(batch))

    def subscribe(self, filters: Sequence[str], qos: int, on_message: MessageHandler) -> None:
        """Subscribe now and again on every reconnect; ``on_message`` runs on the network thread.

        A handler that blocks holds back the broker (TCP backpressure), which is what ingest
        wants when its queue is full. Call before or after ``connect``.
        """
        self._handler = on_message
        self._filters = [(f, qos) for f in filters]
        if self._connected.is_set():
            self._send_subscribe()

    def ack(self, msg: Message) -> None:
        """Acknowledge a QoS 1 message received with ``manual_ack=True``."""
        if msg.qos:
            self.ack_many(((msg.connection, msg.mid),))

    def ack_many(self, received: Iterable[tuple[int, int]]) -> int:
        """Acknowledge (connection, mid) pairs of QoS 1 messages; returns how many went out.

        Pairs from an earlier connection are skipped: the broker has redelivered those
        messages on the new one, and after a reconnect their packet ids may already name
        other messages, which a stale ack would confirm before they are durable.
        """
        current = self._connection
        mids = [mid for connection, mid in received if connection == current]
        self._client.ack_batch(mids)
        return len(mids)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                wait: bool = False, timeout: float = 10.0) -> None:
        """Queue a message; with ``wait`` block until the broker has it (PUBACK for QoS 1).

        While disconnected, QoS 1 messages wait in paho's queue and go out on reconnect. With
        65535 messages unacknowledged, blocks until the broker acknowledges some (``timeout``).
        """
        deadline = time.monotonic() + timeout
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        while info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            # Every packet id is taken by an unacknowledged message: wait for PUBACKs to free some,
            # so a fast publisher is held back by the broker instead of failing.
            if time.monotonic() > deadline:
                raise MqttTimeout(f"publish to {topic!r}: 65535 messages still unacknowledged by "
                                  f"{self.url_for_logs} after {timeout:g}s")
            time.sleep(0.002)
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic!r} failed: {reason_text(info.rc)}")
        if wait:
            try:
                info.wait_for_publish(timeout)
            except (ValueError, RuntimeError) as exc:
                raise MqttError(f"publish to {topic!r} failed: {exc}") from exc
            if not info.is_published():
                raise MqttTimeout(f"publish to {topic!r} not acknowledged by {self.url_for_logs} "
                                  f"within {timeout:g}s")

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _send_subscribe(self) -> None:
        if self._filters:
            self._subscribed.clear()
            rc, mid = self._client.subscribe(self._filters)
            self._sub_mid = -1 if mid is None else mid
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning("MQTT subscribe to %s failed: %s", self._filters, reason_text(rc))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int, codes: list[ReasonCode],
                      props: Properties | None) -> None:
        refused = [(f, reason_text(c)) for (f, _), c in zip(self._filters, codes, strict=False) if c.is_failure]
        if refused:
            log.error("MQTT broker %s refused subscriptions: %s", self.url_for_logs, refused)
        if mid == self._sub_mid:
            self._subscribed.set()

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    rc: ReasonCode, props: Properties | None) -> None:
        if rc.is_failure:
            why = reason_text(rc)
            log.error("MQTT broker %s refused client %r: %s", self.url_for_logs, self.client_id, why)
            if not self._first_done.is_set():
                self._first_result = (False, why)
                self._first_done.set()
            return
        log.info("MQTT connected to %s as %r (session present: %s)", self.url_for_logs, self.client_id,
                 flags.session_present)
        self._connection = next(_CONNECTIONS)
        self._connected.set()
        self._send_subscribe()
        if flags.session_present:
            # The broker kept our subscriptions and may send the backlog before the SUBACK:
            # nobody needs to wait for it.
            self._subscribed.set()
        if not self._first_done.is_set():
            self._first_result = (True, "")
            self._first_done.set()
        if self._on_change is not None:
            self._on_change(True)

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        log.warning("MQTT broker %s unreachable; retrying with backoff", self.url_for_logs)
        if not self._first_done.is_set():
            self._first_result = (False, None)
            self._first_done.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       rc: ReasonCode, props: Properties | None) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        if was and not self._closed:
            log.warning("MQTT connection to %s lost (%s); reconnecting", self.url_for_logs, reason_text(rc))
        if was and self._on_change is not None:
            self._on_change(False)
        if was and not self._closed and self._reconnect_check is not None and not self._reconnect_check():
            log.warning("MQTT client %r: not reconnecting (its owner says the session is no longer ours)",
                        self.client_id)
            self._client.disconnect()  # paho's loop then ends instead of reconnecting

    def _on_message(self, client: paho.Client, userdata: Any, m: paho.MQTTMessage) -> None:
        """paho's own path (MQTT 5, or the fast path off): the same delivery."""
        self._deliver(topic_bytes(m), bytes(m.payload), m.qos, bool(m.retain), m.mid, bool(m.dup))

    def _deliver(self, topic: bytes, payload: bytes, qos: int, retain: bool, mid: int, dup: bool) -> None:
        """The one place a ``Message`` is built, whichever path received it (``transport._paho``'s
        fast path calls it directly as its ``raw_handler``)."""
        handler = self._handler
        if handler is None:
            return
        text = topic.decode("utf-8", "replace")  # an invalid name still reaches the dead letters
        try:
            handler(Message(text, payload, qos, retain, mid, dup, int(time.time() * 1000), self._connection))
        except Exception:  # an escaping exception would kill paho's network thread
            log.exception("MQTT message handler failed on %r (mid %d)", text, mid)
