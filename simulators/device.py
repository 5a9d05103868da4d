"""One simulated device on the broker, behaving like the real ones in contract section 3.

It connects with its own client id and an ``offline`` last will on its status topic, says
``online`` on every (re)connect, publishes each reading as one JSON object, keeps readings
in memory while the broker is away, and uploads them as a JSON array when it returns.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Mapping

from transport.mqtt import MqttClient, MqttError, MqttTimeout, MqttUnreachable, Will

ONLINE, OFFLINE = "online", "offline"
UPLOAD_CHUNK = 500  # readings per uploaded array: big enough to catch up fast, small enough for any broker


def status_payload(state: str, ts_ms: int | None = None) -> bytes:
    body: dict[str, object] = {"state": state}
    if ts_ms is not None:
        body["ts"] = ts_ms
    return json.dumps(body).encode()


class SimDevice:
    """A device's MQTT behaviour; ``send`` never blocks on an absent broker and never drops a reading
    (until ``max_buffer`` readings wait, when the oldest go first, as on a real device's flash)."""

    def __init__(self, url: str, district: str, family: str, site: str, device: str, *,
                 max_buffer: int = 10_000) -> None:
        self.key = f"{district}/{family}/{site}/{device}"
        self.telemetry_topic = f"{self.key}/telemetry"
        self.status_topic = f"{self.key}/status"
        self.client_id = f"{district}-{site}-{device}"  # stable, like a real device's serial number
        self.published = self.buffered = self.uploads = self.dropped = self.statuses = 0
        self._buffer: deque[dict[str, object]] = deque()
        self._max_buffer = max_buffer
        self._announce = threading.Event()  # set on every connect: say online, upload the buffer
        self._client = MqttClient(url, self.client_id, will=Will(self.status_topic, status_payload(OFFLINE)),
                                  reconnect_delay=(1, 4), on_connection_change=self._changed)
        self.dark = False

    def _changed(self, connected: bool) -> None:
        if connected:
            self._announce.set()

    def start(self, timeout: float = 10.0) -> bool:
        """Connect now if the broker answers (True), else keep trying in the background (False).

        Raises MqttConnectError when the broker refuses the device (bad credentials): retrying
        would not help.
        """
        try:
            self._client.connect(timeout)
        except (MqttUnreachable, MqttTimeout):
            self._client.connect_in_background()
            return False
        return True

    @property
    def connected(self) -> bool:
        return self._client.is_connected and not self.dark

    def send(self, ts_ms: int, values: Mapping[str, float]) -> None:
        reading: dict[str, object] = {"ts": ts_ms, "values": dict(values)}
        if not self._client.is_connected:
            self._keep(reading)
            return
        self._catch_up(ts_ms)
        try:
            self._client.publish(self.telemetry_topic, json.dumps(reading).encode(), qos=1)
        except MqttError:
            self._keep(reading)  # the connection went between the check and the publish
            return
        self.published += 1

    def _keep(self, reading: dict[str, object]) -> None:
        if len(self._buffer) >= self._max_buffer:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(reading)
        self.buffered += 1

    def _catch_up(self, ts_ms: int) -> None:
        if not self._announce.is_set():
            return
        self._announce.clear()
        try:
            # Waited for: once the broker has acknowledged it, the retained state is what any later
            # subscriber learns first (a device says online once a connection, so this costs little).
            self._client.publish(self.status_topic, status_payload(ONLINE, ts_ms), qos=1, retain=True,
                                 wait=True, timeout=5.0)
            self.statuses += 1
            while self._buffer:
                chunk = [self._buffer.popleft() for _ in range(min(UPLOAD_CHUNK, len(self._buffer)))]
                try:
                    self._client.publish(self.telemetry_topic, json.dumps(chunk).encode(), qos=1)
                except MqttError:
                    self._buffer.extendleft(reversed(chunk))  # back in front, in order, for the next try
                    raise
                self.uploads += 1
        except MqttError:
            self._announce.set()  # try again with the next reading

    def announce(self, ts_ms: int) -> None:
        """Say online (and upload anything buffered) now rather than with the next reading."""
        if self._client.is_connected:
            self._catch_up(ts_ms)

    def power_off(self) -> None:
        """Lose power: the connection dies without DISCONNECT and the broker publishes the offline will.

        The device stays off the broker (no reconnect attempts) until ``power_on``.
        """
        self.dark = True
        self._client.abort()

    def power_on(self) -> None:
        """Power back: reconnect in the background; the next ``send`` after it says online."""
        if self.dark:
            self.dark = False
            self._client.connect_in_background()

    def close(self, ts_ms: int | None = None, *, say_offline: bool = True) -> None:
        """Switch off properly: say offline (retained, like the will) and disconnect.

        ``say_offline=False`` leaves quietly (a clean disconnect sends no will either).
        """
        if say_offline and self._client.is_connected and not self.dark:
            try:
                self._client.publish(self.status_topic, status_payload(OFFLINE, ts_ms), qos=1, retain=True,
                                     wait=True, timeout=2.0)
                self.statuses += 1
            except MqttError:
                pass  # the broker went away: the will says the same
        self._client.close()

    def backlog(self) -> list[dict[str, object]]:
        """A copy of the readings waiting for the broker, oldest first."""
        return list(self._buffer)

    @property
    def pending(self) -> int:
        """Readings waiting in the buffer for the broker."""
        return len(self._buffer)
