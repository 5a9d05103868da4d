"""Topic and payload decoding with validation (contract section 3).

Everything the per-message path consults is built once from the ``District``: a dict from
site id to (family, street, metric limits), so a message costs one split, a few dict
lookups, one ``orjson.loads`` and a comparison per value. A message is never all-or-
nothing: each value and each array element is judged alone, and what is valid is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import orjson

from domain.district import District
from domain.families import FAMILIES, device_metrics
from domain.readings import DeviceStatus, Reading

# Every reason a message or part of one is refused; the label of the rejection counter.
INVALID_JSON: Final = "invalid_json"
BAD_TOPIC: Final = "bad_topic"
WRONG_DISTRICT: Final = "wrong_district"
UNKNOWN_SITE: Final = "unknown_site"
FAMILY_MISMATCH: Final = "family_mismatch"
UNKNOWN_METRIC: Final = "unknown_metric"
NON_NUMERIC: Final = "non_numeric"
OUT_OF_RANGE: Final = "out_of_range"
FUTURE_TIMESTAMP: Final = "future_timestamp"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_PAYLOAD: Final = "bad_payload"
BAD_STATUS: Final = "bad_status"
TOO_LARGE: Final = "too_large"
REASONS: Final = (INVALID_JSON, BAD_TOPIC, WRONG_DISTRICT, UNKNOWN_SITE, FAMILY_MISMATCH, UNKNOWN_METRIC,
                  NON_NUMERIC, OUT_OF_RANGE, FUTURE_TIMESTAMP, BAD_TIMESTAMP, BAD_PAYLOAD, BAD_STATUS, TOO_LARGE)

MAX_FUTURE_MS: Final = 5 * 60 * 1000
# Device ids become InfluxDB tags and MQTT topic levels: no control characters, no backslash.
_DEVICE = re.compile(r"[^\x00-\x1f\x7f\\]{1,128}")
_STATES: Final = {"online": True, "offline": False}


@dataclass(frozen=True, slots=True)
class Rejection:
    """One reason a message (or ``count`` parts of it) was refused; ``detail`` shows the first."""

    reason: str
    detail: str
    count: int = 1


@dataclass(slots=True)
class Decoded:
    readings: list[Reading] = field(default_factory=list)
    status: DeviceStatus | None = None
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Site:
    family: str
    street: str
    limits: dict[str, tuple[float, float, bool]]  # metric → (low, high, binary)


class _Rejections:
    """Groups a message's refusals by reason so a 3,000-element array makes one dead letter."""

    __slots__ = ("by_reason",)

    def __init__(self) -> None:
        self.by_reason: dict[str, list[Any]] = {}

    def add(self, reason: str, detail: str) -> None:
        entry = self.by_reason.get(reason)
        if entry is None:
            self.by_reason[reason] = [detail, 1]
        else:
            entry[1] += 1

    def result(self) -> list[Rejection]:
        return [Rejection(r, d, n) for r, (d, n) in self.by_reason.items()]


class Decoder:
    """Turns (topic, payload) into readings, a status and rejections; never raises."""

    def __init__(self, district: District, *, max_future_ms: int = MAX_FUTURE_MS,
                 max_payload_bytes: int = 4 * 1024 * 1024) -> None:
        self.district = district.name
        self.max_future_ms = max_future_ms
        self.max_payload_bytes = max_payload_bytes
        limits = {fam: {m.name: (m.low, m.high, m.binary) for m in device_metrics(fam).values()}
                  for fam in FAMILIES}
        self._sites = {s.id: _Site(s.family, s.street, limits[s.family]) for s in district.sites.values()}

    def decode(self, topic: str, payload: bytes, received_ms: int, now_ms: int) -> Decoded:
        out = Decoded()
        parts = topic.split("/")
        if len(parts) != 5 or parts[4] not in ("telemetry", "status"):
            out.rejections.append(Rejection(BAD_TOPIC, f"expected {self.district}/FAMILY/SITE/DEVICE/"
                                                       f"telemetry|status, got {topic!r}"))
            return out
        district, family, site_id, device, kind = parts
        if district != self.district:
            out.rejections.append(Rejection(WRONG_DISTRICT, f"district {district!r}, expected {self.district!r}"))
            return out
        site = self._sites.get(site_id)
        if site is None:
            out.rejections.append(Rejection(UNKNOWN_SITE, f"site {site_id!r} is not in the config"))
            return out
        if family != site.family:
            out.rejections.append(Rejection(FAMILY_MISMATCH, f"site {site_id!r} is a {site.family}, "
                                                             f"the topic says {family!r}"))
            return out
        if not _DEVICE.fullmatch(device):
            out.rejections.append(Rejection(BAD_TOPIC, f"device id {device!r}: 1-128 characters, no control "
                                                       "characters or backslash"))
            return out
        if len(payload) > self.max_payload_bytes:
            out.rejections.append(Rejection(TOO_LARGE, f"{len(payload)} bytes, at most "
                                                       f"{self.max_payload_bytes} accepted"))
            return out
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            out.rejections.append(Rejection(INVALID_JSON, str(exc)[:200]))
            return out
        rej = _Rejections()
        if kind == "status":
            out.status = self._status(doc, site_id, family, device, received_ms, now_ms, rej)
        elif isinstance(doc, dict):
            self._reading(doc, site, site_id, device, received_ms, now_ms, out.readings, rej)
        elif isinstance(doc, list) and doc:
            for item in doc:
                if isinstance(item, dict):
                    self._reading(item, site, site_id, device, received_ms, now_ms, out.readings, rej)
                else:
                    rej.add(BAD_PAYLOAD, f"array elements must be objects, got {_short(item)}")
        else:
            rej.add(BAD_PAYLOAD, f'expected {{"ts": ..., "values": {{...}}}} or a non-empty array of them, '
                                 f"got {_short(doc)}")
        if rej.by_reason:
            out.rejections = rej.result()
        return out

    def _reading(self, item: dict[str, Any], site: _Site, site_id: str, device: str, received_ms: int,
                 now_ms: int, into: list[Reading], rej: _Rejections) -> None:
        values = item.get("values")
        if not isinstance(values, dict) or not values:
            rej.add(BAD_PAYLOAD, f'"values" must be a non-empty object, got {_short(values)}')
            return
        ts = self._timestamp(item.get("ts"), received_ms, now_ms, rej)
        if ts is None:
            return
        limits = site.limits
        kept: dict[str, float] = {}
        for name, v in values.items():
            lim = limits.get(name)
            if lim is None:
                rej.add(UNKNOWN_METRIC, f"{site.family} has no metric {name!r}")
            elif type(v) is not float and type(v) is not int:  # bool is an int subclass: refused too
                rej.add(NON_NUMERIC, f"{name}={_short(v)} is not a number")
            elif (v != 0 and v != 1) if lim[2] else not (lim[0] <= v <= lim[1]):
                span = "0 or 1" if lim[2] else f"[{lim[0]:g}, {lim[1]:g}]"
                rej.add(OUT_OF_RANGE, f"{name}={v} outside {span}")
            else:
                kept[name] = float(v)
        if kept:
            into.append(Reading(site.family, site_id, device, site.street, ts, kept))

    def _timestamp(self, ts: Any, received_ms: int, now_ms: int, rej: _Rejections) -> int | None:
        if ts is None:
            return received_ms
        if type(ts) is int or type(ts) is float:
            if not 0 < ts < 1e14:  # year 5138: anything beyond is a unit mistake (µs, ns)
                rej.add(BAD_TIMESTAMP, f"ts={ts} is not epoch milliseconds")
                return None
            ms = int(ts)
        elif isinstance(ts, str):
            try:
                dt = datetime.fromisoformat(ts)
            except ValueError:
                dt = None
            if dt is None or dt.tzinfo is None:
                rej.add(BAD_TIMESTAMP, f"ts={ts!r} is not RFC 3339 with an offset (e.g. 2025-11-28T08:00:00Z)")
                return None
            ms = int(dt.timestamp() * 1000)
        else:
            rej.add(BAD_TIMESTAMP, f"ts={_short(ts)}: expected epoch milliseconds or an RFC 3339 string")
            return None
        if ms > now_ms + self.max_future_ms:
            rej.add(FUTURE_TIMESTAMP, f"ts={ts!r} is {(ms - now_ms) / 1000:.0f}s in the future")
            return None
        return ms

    def _status(self, doc: Any, site_id: str, family: str, device: str, received_ms: int, now_ms: int,
                rej: _Rejections) -> DeviceStatus | None:
        state = doc.get("state") if isinstance(doc, dict) else doc
        online = _STATES.get(state) if isinstance(state, str) else None
        if online is None:
            rej.add(BAD_STATUS, f'expected {{"state": "online"|"offline"}}, got {_short(doc)}')
            return None
        ts = self._timestamp(doc.get("ts") if isinstance(doc, dict) else None, received_ms, now_ms, rej)
        if ts is None:
            return None
        return DeviceStatus(family, site_id, device, online, ts)


def _short(value: Any, limit: int = 80) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
