"""A simulated device on a real broker: identity, will, status, and its buffer across an outage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.stack import StackInfo, free_port, start_mosquitto, stop_mosquitto
from simulators.device import SimDevice
from simulators.tap import Tap
from tests.support.helpers import wait_until
from transport.mqtt import Message

TS0 = 1_800_000_000_000


def payloads(tap: Tap, suffix: str) -> list[object]:
    return [json.loads(m.payload) for m in tap.messages() if m.topic.endswith(suffix)]


def test_device_has_its_own_identity_says_online_and_leaves_a_will(stack: StackInfo, district: str):
    device = SimDevice(stack.mqtt_url, district, "underground", "S1", "air-1")
    try:
        assert device.start(10)
        device.announce(TS0)
        # A late subscriber still learns the state: the status is retained, like the will.
        with Tap(stack.mqtt_url, [f"{district}/#"]) as tap:
            assert tap.wait_for(lambda ms: len(ms) >= 1, 10)
            first: Message = tap.messages()[0]
            assert (first.topic, first.retain) == (f"{district}/underground/S1/air-1/status", True)
            assert json.loads(first.payload) == {"state": "online", "ts": TS0}

            device.power_off()
            assert tap.wait_for(lambda ms: len(ms) >= 2, 10), "the broker publishes the will"
            assert payloads(tap, "/status")[-1] == {"state": "offline"}

            device.power_on()
            wait_until(lambda: device.connected, 15, "the device reconnecting after power comes back")
            device.send(TS0 + 5000, {"co_ppm": 1.0})
            assert tap.wait_for(lambda ms: len(ms) >= 4, 10)
            assert payloads(tap, "/status")[-1] == {"state": "online", "ts": TS0 + 5000}
            assert payloads(tap, "/telemetry") == [{"ts": TS0 + 5000, "values": {"co_ppm": 1.0}}]
    finally:
        device.close(TS0 + 10_000)
    log = Path(stack.data_dir, "mosquitto.log").read_text(errors="replace")
    assert f" as {district}-S1-air-1 " in log, "each device connects with its own client id"


def test_device_switched_off_properly_says_offline(stack: StackInfo, district: str):
    with Tap(stack.mqtt_url, [f"{district}/+/+/+/status"]) as tap:
        device = SimDevice(stack.mqtt_url, district, "gas_station", "G1", "vapor-1")
        assert device.start(10)
        device.announce(TS0)
        device.close(TS0 + 1000)
        assert tap.wait_for(lambda ms: len(ms) >= 2, 10)
    assert payloads(tap, "/status") == [{"state": "online", "ts": TS0}, {"state": "offline", "ts": TS0 + 1000}]


def test_device_buffers_while_the_broker_is_away_and_uploads_one_array(tmp_path: Path, district: str):
    # The session broker is shared by every test, so the outage happens on a broker of our own.
    broker_dir = tmp_path / "broker"
    port = free_port()
    start_mosquitto(broker_dir, port, die_with_parent=True)
    url = f"mqtt://127.0.0.1:{port}"
    device = SimDevice(url, district, "gas_station", "G1", "tank-1")
    tap = Tap(url, [f"{district}/+/+/+/telemetry"])
    try:
        tap.connect()
        assert device.start(10)
        device.send(TS0, {"tank_level_pct": 60.0})
        assert tap.wait_for(lambda ms: len(ms) == 1, 10)

        stop_mosquitto(broker_dir)
        wait_until(lambda: not device.connected, 10, "the device noticing the broker is gone")
        for i in range(1, 6):
            device.send(TS0 + i * 5000, {"tank_level_pct": 60.0 - i / 10})
        assert (device.pending, device.published) == (5, 1)

        start_mosquitto(broker_dir, port, die_with_parent=True)
        wait_until(lambda: device.connected and tap.connected, 30, "device and listener reconnecting")
        device.send(TS0 + 30_000, {"tank_level_pct": 59.0})
        assert tap.wait_for(lambda ms: len(ms) == 3, 10)
    finally:
        device.close()
        tap.close()
        stop_mosquitto(broker_dir)
    bodies = [json.loads(m.payload) for m in tap.messages()]
    assert bodies[1] == [{"ts": TS0 + i * 5000, "values": {"tank_level_pct": 60.0 - i / 10}} for i in range(1, 6)]
    assert bodies[2] == {"ts": TS0 + 30_000, "values": {"tank_level_pct": 59.0}}
    assert (device.pending, device.uploads, device.buffered) == (0, 1, 5)


@pytest.mark.parametrize(("max_buffer", "sent", "kept", "dropped"), [(10, 5, 5, 0), (3, 5, 3, 2), (1, 4, 1, 3)])
def test_the_buffer_is_bounded_and_drops_the_oldest(max_buffer, sent, kept, dropped):
    device = SimDevice(f"mqtt://127.0.0.1:{free_port()}", "nowhere", "gas_station", "G1", "tank-1",
                       max_buffer=max_buffer)
    try:
        assert device.start(2) is False, "nothing listens there: the device keeps trying in the background"
        for i in range(sent):
            device.send(TS0 + i, {"tank_level_pct": float(i)})
        assert (device.pending, device.dropped, device.published) == (kept, dropped, 0)
        assert [r["ts"] for r in device.backlog()] == [TS0 + i for i in range(sent - kept, sent)]
    finally:
        device.close()
