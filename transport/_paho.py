"""paho-mqtt with a fast receive path, private to ``transport.mqtt``.

Measured on the 2-core dev machine, a stock paho 2.2 subscriber costs about 100 µs of CPU per
QoS 1 message; this one about 25 µs, which is what lets one ``serve`` process ingest more
than 15,000 messages/s. Where the time went, and what replaces it:

* paho reads each packet with three or more ``recv`` calls (command byte, length bytes one
  by one, body) and a ``select`` before each: five system calls for a 100-byte PUBLISH.
  ``_BufferedSocket`` reads 64 KiB at a time; ``pending()`` is what paho already asks SSL
  sockets, and while it is non-zero paho skips the ``select`` wait.
* For MQTT 3.1.1 QoS 0/1 PUBLISH packets, ``FastPahoClient.loop_read`` parses every
  complete packet in the buffer in one loop and hands (topic, payload, ...) bytes to
  ``raw_handler``, skipping paho's per-packet state dict, ``MQTTMessage`` and topic
  matcher. Every other packet (CONNACK, SUBACK, PUBACK, PINGRESP, QoS 2, MQTT 5 with its
  properties) and any packet cut off at the end of the buffer goes through paho as usual.
* ``ack_batch`` queues the PUBACKs of a whole batch as one write with one wake-up of the
  network thread, instead of a socket-pair write and a ``send`` per message.

These lean on paho 2.x internals, which is why pyproject pins paho-mqtt below 3; the
integration tests exercise every path against a real Mosquitto. Quarantine: ``fast_path()``
checks once, at the first client, that the installed paho has every private name used here
(``PRIVATE``); if one is missing the clients fall back to paho's own receive and ack paths,
slower but correct, and say so once in the log. Every private access below is marked with
why it is needed.
"""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

log = logging.getLogger(__name__)
RawHandler = Callable[[bytes, bytes, int, bool, int, bool], None]  # topic, payload, qos, retain, mid, dup
_PUBACK = 0x40
_OK = MQTTErrorCode.MQTT_ERR_SUCCESS
# The private names of paho.Client the fast path uses (methods it calls or overrides, state it reads).
PRIVATE = ("_create_socket", "_sock", "_ssl", "_protocol", "_in_packet", "_manual_ack", "_send_puback",
           "_msgtime_mutex", "_last_bytes_received", "_handle_on_message", "_in_callback_mutex", "_userdata",
           "_packet_queue")


@functools.cache
def fast_path() -> bool:
    """Whether the installed paho has what the fast path needs; logged once when it has not."""
    try:
        probe = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    except Exception as err:  # a paho so different that even this fails: its own path, as is
        log.warning("MQTT fast receive path off: cannot probe paho-mqtt (%s)", err)
        return False
    missing = [name for name in PRIVATE if not hasattr(probe, name)]
    if not hasattr(paho, "time_func"):
        missing.append("paho.mqtt.client.time_func")
    # _in_packet: paho's partial-packet state; "command" 0 means it is between packets.
    in_packet = getattr(probe, "_in_packet", None)
    if not isinstance(in_packet, dict) or "command" not in in_packet:
        missing.append("_in_packet['command']")
    if missing:
        log.warning("MQTT fast receive path off: paho-mqtt %s lacks %s; using paho's own receive path "
                    "(about 4x the CPU per message)", getattr(paho, "__version__", "?"), ", ".join(missing))
        return False
    return True


class _BufferedSocket:
    """A plain TCP socket read 64 KiB at a time; everything else is the socket's own."""

    __slots__ = ("buf", "pos", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.pos = 0

    def pending(self) -> int:
        return len(self.buf) - self.pos

    def fill(self) -> bool:
        """Read what the socket has into an empty buffer; False if it has nothing (or failed:
        paho's own next ``recv`` then meets the same condition and handles it)."""
        try:
            data = self.sock.recv(65536)
        except OSError:  # BlockingIOError included
            return False
        if not data:
            return False
        self.buf, self.pos = data, 0
        return True

    def recv(self, bufsize: int) -> bytes:
        if self.pos >= len(self.buf):
            data = self.sock.recv(65536)  # raises BlockingIOError when nothing is there
            if len(data) <= bufsize:
                return data
            self.buf, self.pos = data, 0
        chunk = self.buf[self.pos:self.pos + bufsize]
        self.pos += len(chunk)
        return chunk

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking, ...
        return getattr(self.sock, name)


class FastPahoClient(paho.Client):
    """paho's client with the fast path when ``fast_path()`` holds, else exactly paho's own."""

    raw_handler: RawHandler | None = None  # set to receive 3.1.1 QoS 0/1 messages as bytes
    after_read: Callable[[], None] | None = None  # runs once per round of reads

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.fast = fast_path()
        super().__init__(*args, **kwargs)

    def _create_socket(self) -> Any:
        # Private hook (paho 2.x: opens the TCP/TLS socket): wrapping it buffers the reads.
        sock = super()._create_socket()
        # _ssl: paho's TLS context; an SSL socket keeps its own buffering.
        return _BufferedSocket(sock) if self.fast and isinstance(sock, socket.socket) and not self._ssl else sock

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = _OK
        # _protocol: MQTT 5 PUBLISHes carry properties the fast parser does not read.
        fast = self.fast and self.raw_handler is not None and self._protocol != paho.MQTTv5
        # Bounded, so that queued acks and publishes still go out between rounds.
        for _ in range(1000):
            # Private: the socket paho reads from (ours when buffered). Read only on the fast path:
            # with it off, paho may lack the attribute, and its own loop_read needs no look at it.
            sock = self._sock if self.fast else None
            if not isinstance(sock, _BufferedSocket):
                rc = super().loop_read(max_packets)
                break
            # _in_packet: paho's partial-packet state; only between packets may we read ahead of it.
            if fast and self._in_packet["command"] == 0:
                if not sock.pending() and not sock.fill():
                    rc = super().loop_read(1)  # nothing new, or the peer left: let paho see which
                    break
                self._take_publishes(sock)
                if not sock.pending():
                    continue  # all consumed: the socket may have more
            rc = super().loop_read(1)  # one packet the ordinary way
            if rc != _OK or not sock.pending():
                break
        if self.after_read is not None:
            self.after_read()
        return rc

    def _take_publishes(self, sock: _BufferedSocket) -> None:
        """Hand every complete QoS 0/1 PUBLISH at the head of the buffer to ``raw_handler``."""
        buf, pos, end = sock.buf, sock.pos, len(sock.buf)
        handler = self.raw_handler
        assert handler is not None
        auto_ack = not self._manual_ack  # private: paho's manual_ack setting, which paho's own path obeys
        start = pos
        while pos + 2 <= end:
            command = buf[pos]
            if command & 0xF0 != 0x30 or command & 0x06 == 0x06 or command & 0x06 == 0x04:
                break  # not a QoS 0/1 PUBLISH: paho's turn
            length, shift, i = 0, 0, pos + 1
            while i < end and i - pos <= 4:
                b = buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            else:
                break  # length cut off (or malformed: paho will refuse it)
            body_end = i + length
            if body_end > end:
                break  # packet cut off: paho reads the rest from the socket
            qos = (command & 0x06) >> 1
            topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
            payload_at = topic_end + 2 if qos else topic_end
            if topic_end == i + 2 or payload_at > body_end:
                break  # empty topic or inconsistent lengths: paho drops the connection
            mid = (buf[topic_end] << 8) | buf[topic_end + 1] if qos else 0
            handler(buf[i + 2:topic_end], buf[payload_at:body_end], qos, bool(command & 0x01), mid,
                    bool(command & 0x08))
            if qos and auto_ack:
                self._send_puback(mid)  # private: what paho itself sends for an auto-acked QoS 1 message
            pos = body_end
        if pos != start:
            sock.pos = pos
            # Private: paho's keepalive clock; without the update it would ping (and time out) a
            # connection that is busy with messages paho never saw.
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()

    def stop_soon(self) -> None:
        """Tell the network thread to end at its next look, before the socket is shut."""
        # Private: loop_stop's flag, raised before the socket goes: a thread that saw the connection
        # die first would sleep out a reconnect backoff slice (up to 1 s) before noticing it. A paho
        # without the flag only loses that shortcut: loop_stop still ends the thread.
        if hasattr(self, "_thread_terminate"):
            self._thread_terminate = True

    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        # Private hook (paho's dispatch of one message): we register no per-topic callbacks,
        # so paho's topic matcher, walked for every message, would find nothing.
        if not self.fast:
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:  # private: the lock paho holds around every callback
                on_message(self, self._userdata, message)  # private: the userdata paho passes

    def ack_batch(self, mids: Sequence[int]) -> None:
        """PUBACKs for many messages as one queued write (see the module docstring)."""
        if not mids:
            return
        if not self.fast:
            for mid in mids:
                self.ack(mid, 1)  # paho's public manual ack: one write and wake-up each
            return
        blob = b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)
        # Private: paho's outgoing packet queue, the one writer of the socket (thread-safe).
        self._packet_queue(_PUBACK, blob, 0, 0)


def topic_bytes(message: paho.MQTTMessage) -> bytes:
    """The topic as received: ``message.topic`` raises on bytes that are not UTF-8, and a bad
    topic must still reach the dead letters."""
    # Private: paho keeps the raw topic in ``_topic``; a paho without it gets the decoded one.
    raw = getattr(message, "_topic", None)
    return raw if isinstance(raw, bytes) else message.topic.encode("utf-8", "replace")
