"""A minimal pipelined MQTT 3.1.1 QoS 1 publisher for load generation.

paho publishes about 11,000 QoS 1 messages/s from one process on the dev machine and spends
most of a core doing it, which would starve the very process a benchmark measures. This
client writes PUBLISH packets in large pipelined chunks on a plain socket and only counts
PUBACKs (about 5 µs a message), like a C load generator would. It speaks just enough MQTT
for that: CONNECT, PUBLISH at QoS 1, PUBACK, PINGREQ. Everything else uses ``MqttClient``.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import time
from collections.abc import Iterable

from domain.settings import mqtt_parts
from transport.mqtt import MqttConnectError, MqttTimeout

_PUBACK = 0x40
_PINGRESP = 0xD0
_CONNACK = 0x20


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class PipelinedPublisher:
    """QoS 1 publisher that keeps up to ``window`` messages unacknowledged.

    ``acked`` counts messages the broker has taken responsibility for (PUBACK received);
    that is what a benchmark may call "published". TLS and MQTT 5 are not supported: this
    is a tool for a local broker, not a device library.
    """

    def __init__(self, url: str, client_id: str, window: int = 20000, keepalive: int = 60) -> None:
        host, port, tls, user, password = mqtt_parts(url)
        if tls:
            raise ValueError(f"{url}: the load publisher speaks plain MQTT only (use mqtt://)")
        if not 1 <= window <= 65535:
            raise ValueError(f"window={window}: expected 1..65535")
        self.window = window
        self.sent = 0
        self.acked = 0
        self._mid = 0
        self._keepalive = keepalive
        self._rx = bytearray()
        self._last_io = time.monotonic()
        try:
            self._sock = socket.create_connection((host, port), timeout=10.0)
        except OSError as exc:
            raise MqttConnectError(f"MQTT broker mqtt://{host}:{port} unreachable: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags = 0x02  # clean session: a load generator has no session worth keeping
        payload = _utf8(client_id)
        if user is not None:
            flags |= 0x80
            payload += _utf8(user)
            if password is not None:
                flags |= 0x40
                payload += _utf8(password)
        var = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive)
        body = var + payload
        self._sock.sendall(bytes([0x10]) + _varint(len(body)) + body)
        ack = self._recv_exact(4)
        if ack[0] != _CONNACK or ack[3] != 0:
            raise MqttConnectError(f"MQTT broker mqtt://{host}:{port} refused the load publisher "
                                   f"(CONNACK return code {ack[3]})")
        self._sock.setblocking(False)

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise MqttConnectError("MQTT broker closed the connection during CONNECT")
            buf += chunk
        return buf

    @property
    def inflight(self) -> int:
        return self.sent - self.acked

    def publish_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """Send (topic-bytes, payload) pairs as one pipelined write; caller respects ``window``."""
        out = bytearray()
        for topic, payload in items:
            self._mid = self._mid % 65535 + 1
            remaining = 2 + len(topic) + 2 + len(payload)
            out += b"\x32" + _varint(remaining) + struct.pack("!H", len(topic)) + topic
            out += struct.pack("!H", self._mid) + payload
            self.sent += 1
        self._send(bytes(out))

    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view)
            except BlockingIOError:
                # The broker is slower than us: read acks while the socket buffer drains.
                select.select([self._sock], [self._sock], [], 0.05)
                self.poll(0)
                continue
            view = view[n:]
        self._last_io = time.monotonic()

    def poll(self, timeout: float) -> None:
        """Read whatever PUBACKs arrived, waiting up to ``timeout`` for the first."""
        if timeout > 0:
            select.select([self._sock], [], [], timeout)
        while True:
            try:
                chunk = self._sock.recv(65536)
            except BlockingIOError:
                break
            if not chunk:
                raise MqttConnectError("MQTT broker closed the load publisher's connection")
            self._rx += chunk
        self._parse()
        if time.monotonic() - self._last_io > self._keepalive / 2:
            self._send(b"\xc0\x00")  # PINGREQ

    def _parse(self) -> None:
        rx, pos, acked = self._rx, 0, 0
        while len(rx) - pos >= 2:
            kind, length = rx[pos] & 0xF0, rx[pos + 1]
            if length & 0x80:
                raise MqttConnectError(f"unexpected long packet 0x{rx[pos]:02x} from the broker")
            if len(rx) - pos < 2 + length:
                break
            if kind == _PUBACK:
                acked += 1
            elif kind != _PINGRESP:
                raise MqttConnectError(f"unexpected packet 0x{rx[pos]:02x} from the broker")
            pos += 2 + length
        del rx[:pos]
        self.acked += acked

    def drain(self, timeout: float) -> None:
        """Wait until every message sent is acknowledged; raises MqttTimeout with the count missing."""
        deadline = time.monotonic() + timeout
        while self.inflight > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MqttTimeout(f"{self.inflight} of {self.sent} messages unacked after {timeout:g}s")
            self.poll(min(left, 0.1))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.setblocking(True)
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        self._sock.close()
