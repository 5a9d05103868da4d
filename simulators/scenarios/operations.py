"""Operational incidents: people living in a shelter, a device going silent, malformed messages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from domain.config import Schedule, Site
from domain.families import FAMILIES, FAMILY_NAMES, UNDERGROUND, device_metrics
from simulators.models import MODEL_CLASSES, device_ids
from simulators.scenarios.base import (
    Injection,
    Scenario,
    ScenarioContext,
    deadman_after,
    lowest_bound,
    threshold_rule,
)

DEFAULT_NIGHT = "23:00-06:00"


class NightResidency(Scenario):
    name = "night-residency"
    family = UNDERGROUND
    prefer_kinds = ("shelter", "basement")
    metrics = ("occupancy",)
    summary = ("a few people settle in a shelter for the night; run outside the rule's night hours, "
               "that site's clock is set back to last night")

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        rule = threshold_rule(self.district, UNDERGROUND, "occupancy", scheduled=True)
        self.window = rule.schedule if rule is not None and rule.schedule is not None \
            else Schedule(between=DEFAULT_NIGHT)
        self.people = lowest_bound(rule, 0.0) + self.rng.randint(3, 8)
        self.duration_s = 45 * 60.0

    def shape(self, t: float, values: dict[str, float]) -> None:
        values["occupancy"] = max(values["occupancy"], float(self.people))

    def _in_window(self, ts_ms: float) -> bool:
        local = datetime.fromtimestamp(ts_ms / 1000.0, self.district.tz)
        return self.window.active_at(local.hour * 60 + local.minute)

    def site_offset_ms(self, sim_start_ms: int) -> int:
        begin = sim_start_ms + self.start_s * 1000.0
        if self._in_window(begin) and self._in_window(begin + self.duration_s * 1000.0):
            return 0
        start_min, end_min = self.window.minutes
        length_min = (end_min - start_min) % 1440 or 1440
        lead = timedelta(minutes=min(30.0, length_min / 4.0))  # well inside the window, not at its edge
        now = datetime.fromtimestamp(begin / 1000.0, self.district.tz)
        night = now.replace(hour=start_min // 60, minute=start_min % 60, second=0, microsecond=0) + lead
        if night > now:
            night -= timedelta(days=1)
        return int(night.timestamp() * 1000.0 - begin)


class DeviceSilent(Scenario):
    name = "device-silent"
    family = None
    summary = "a device loses power (the broker publishes its will), stays silent past the deadman, then returns"

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        after = deadman_after(self.district, site.family) or 120.0
        self.silence_s = max(1.5 * after, after + 60.0)
        self.device = device_ids(site.family)[0]
        self.duration_s = self.silence_s + 60.0

    def silent_devices(self, t: float) -> frozenset[str]:
        return frozenset((self.device,)) if 0.0 <= t < self.silence_s else frozenset()


class BadPayloads(Scenario):
    name = "bad-payloads"
    family = None
    injects = True
    summary = "malformed, mis-addressed and out-of-range messages arrive among the good ones, every 30 s for 2 minutes"
    round_s = 30.0
    rounds = 5

    def __init__(self, ctx: ScenarioContext, site: Site, start_s: float = 0.0) -> None:
        super().__init__(ctx, site, start_s)
        self.duration_s = self.round_s * (self.rounds - 1)
        metrics = device_metrics(site.family)
        self.numeric = [m for m, spec in metrics.items() if not spec.binary]
        self.binary = [m for m, spec in metrics.items() if spec.binary]
        devices = MODEL_CLASSES[site.family].devices
        self.device = next(d for d, ms in devices.items() if self.numeric[0] in ms)

    def _topic(self, kind: str = "telemetry", family: str | None = None, site: str | None = None) -> str:
        return f"{self.district.name}/{family or self.site.family}/{site or self.site.id}/{self.device}/{kind}"

    def injections(self, t0: float, t1: float, now_ms: int, values: Mapping[str, float]) -> list[Injection]:
        due = sum(1 for k in range(self.rounds) if t0 < k * self.round_s <= t1)
        return [i for _ in range(due) for i in self.kinds(now_ms, values)]

    def kinds(self, now_ms: int, values: Mapping[str, float]) -> list[Injection]:
        """One message of every malformed kind, built from the site's current good values."""
        m = self.numeric[0]
        m2 = self.numeric[1] if len(self.numeric) > 1 else m
        spec = FAMILIES[self.site.family][m2]
        too_high = spec.high + (spec.high - spec.low) + 1.0
        good = values.get(m, 0.0)

        def body(obj: Any) -> bytes:
            return json.dumps(obj).encode()

        unknown_site = "NO-SUCH-SITE"
        while unknown_site in self.district.sites:
            unknown_site += "-X"
        other_family = next(f for f in FAMILY_NAMES if f != self.site.family)
        reading = {"ts": now_ms, "values": {m: good}}
        out = [
            Injection("not-json", self._topic(), b'{"ts": %d, "values": {"%s": 1.0' % (now_ms, m.encode()),
                      "rejected"),
            Injection("not-utf8", self._topic(), b'\xff\xfe{"values": {}}', "rejected"),
            Injection("not-an-object", self._topic(), body("reading"), "rejected"),
            Injection("array-of-garbage", self._topic(), body([1, "two", None]), "rejected"),
            Injection("no-values", self._topic(), body({"ts": now_ms}), "rejected"),
            Injection("unknown-site", self._topic(site=unknown_site), body(reading), "rejected"),
            Injection("wrong-family", self._topic(family=other_family), body(reading), "rejected"),
            Injection("unknown-metric", self._topic(), body({"ts": now_ms, "values": {"no_such_metric": 1.0}}),
                      "rejected"),
            Injection("not-a-number", self._topic(), body({"ts": now_ms, "values": {m: "high"}}), "rejected"),
            Injection("out-of-range", self._topic(), body({"ts": now_ms, "values": {m2: too_high}}), "rejected"),
            Injection("future-timestamp", self._topic(), body({"ts": now_ms + 3_600_000, "values": {m: good}}),
                      "rejected"),
            Injection("bad-timestamp", self._topic(), body({"ts": "yesterday at noon", "values": {m: good}}),
                      "rejected"),
            Injection("partly-valid", self._topic(), body({"ts": now_ms, "values": {m: good, m2: too_high}}),
                      f"{m} kept, {m2} rejected"),
            Injection("bad-status", self._topic("status"), body({"state": "asleep"}), "rejected"),
        ]
        if self.binary:
            out.append(Injection("not-binary", self._topic(), body({"ts": now_ms, "values": {self.binary[0]: 0.5}}),
                                 "rejected"))
        return out
