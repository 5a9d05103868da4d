"""What ingest hands downstream: validated, typed readings and device status changes.

Built once per message in ``ingest`` and never re-parsed: the InfluxDB writer and the
alert engine both consume these objects as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reading:
    """One telemetry point: one device's values at one instant (one InfluxDB point)."""

    family: str
    site: str
    device: str
    street: str
    ts_ms: int  # event time, epoch milliseconds
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device said it is online or offline (``offline`` usually arrives as its last will)."""

    family: str
    site: str
    device: str
    online: bool
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Batch:
    """The validated content of a group of MQTT messages, handed to the writer and the engine."""

    readings: tuple[Reading, ...]
    statuses: tuple[DeviceStatus, ...] = ()
