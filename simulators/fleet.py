"""The simulated district: every site's devices publishing on a schedule, scenarios on top.

Readings are stamped on a fixed grid of simulated time (one per device every ``cadence_s``,
the devices spread evenly over it), so a run with the same seed and start time publishes
the same values. The loop waits for the simulated clock to reach each slot; with ``--rate``
the cadence is chosen so that the whole fleet publishes that many messages a real second.
"""

from __future__ import annotations

import heapq
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain.config import Site
from domain.district import District
from simulators.clock import SimClock
from simulators.device import SimDevice
from simulators.model import SiteModel
from simulators.models import MODEL_CLASSES, build_model
from simulators.quiet import clamp
from simulators.scenarios import Scenario
from transport.mqtt import MqttClient, MqttError


class SimulationError(Exception):
    """The simulation cannot run (e.g. no broker at the URL); the message says what to fix."""


@dataclass(frozen=True)
class SimOptions:
    mqtt_url: str
    speed: float = 1.0
    rate: float | None = None  # messages per real second for the whole fleet; None: every cadence_s
    duration_s: float | None = None  # real seconds; None: until stopped
    seed: int | None = None
    cadence_s: float = 5.0
    connect_timeout_s: float = 10.0


@dataclass
class ScenarioStats:
    state: str = "pending"  # pending → running → done
    shaped: int = 0  # device readings it changed
    silenced: int = 0  # device readings it kept from being sent
    injected: Counter[str] = field(default_factory=Counter)

    def text(self) -> str:
        parts = [self.state]
        if self.shaped:
            parts.append(f"{self.shaped} readings shaped")
        if self.silenced:
            parts.append(f"{self.silenced} readings silenced")
        if self.injected:
            parts.append(f"{sum(self.injected.values())} bad messages of {len(self.injected)} kinds")
        return ", ".join(parts)


@dataclass(frozen=True)
class Summary:
    devices: int
    published: int
    buffered: int
    uploads: int
    waiting: int
    dropped: int
    statuses: int
    scenarios: dict[str, ScenarioStats]
    seconds: float = 0.0  # real time the run took

    def line(self) -> str:
        pace = f" in {self.seconds:.0f} s ({self.published / self.seconds:.0f}/s)" if self.seconds >= 1 else ""
        out = (f"simulate: {self.devices} devices published {self.published} readings{pace} "
               f"({self.buffered} buffered while the broker was away, uploaded in {self.uploads} arrays, "
               f"{self.waiting} still waiting, {self.dropped} dropped), {self.statuses} status messages")
        if self.scenarios:
            out += "; " + "; ".join(f"{label}: {st.text()}" for label, st in self.scenarios.items())
        return out


@dataclass
class _SiteRun:
    site: Site
    model: SiteModel
    scenarios: list[Scenario]
    offset_ms: int = 0


@dataclass
class _Slot:
    run: _SiteRun
    device_id: str
    metrics: tuple[str, ...]
    device: SimDevice


Note = Callable[[str], None]


class Simulation:
    """``connect()``, then ``run(stop)`` until the duration or ``stop``; ``close()`` switches off."""

    def __init__(self, district: District, scenarios: Sequence[Scenario], options: SimOptions,
                 clock: SimClock | None = None, on_note: Note | None = None) -> None:
        self.district = district
        self.options = options
        self.clock = clock or SimClock.for_run(options.speed, options.duration_s)
        self.scenarios = list(scenarios)
        self.stats = {sc.label: ScenarioStats() for sc in self.scenarios}
        self._note = on_note or (lambda _text: None)
        self._t_prev = {sc.label: -1e-9 for sc in self.scenarios}
        self._injector: MqttClient | None = None
        self._ran_s = 0.0
        self._slots: list[_Slot] = []
        for site in district.sites.values():
            mine = [sc for sc in self.scenarios if sc.site.id == site.id]
            run = _SiteRun(site, build_model(site, district, options.seed), mine)
            for device_id, metrics in MODEL_CLASSES[site.family].devices.items():
                device = SimDevice(options.mqtt_url, district.name, site.family, site.id, device_id)
                self._slots.append(_Slot(run, device_id, metrics, device))
        self._begin_ms = self.clock.now_ms()
        for run in {id(s.run): s.run for s in self._slots}.values():
            run.offset_ms = min((sc.site_offset_ms(self._begin_ms) for sc in run.scenarios), default=0)

    @property
    def begin_ms(self) -> int:
        """Simulated time at which the run (and every scenario's ``start_s``) began."""
        return self._begin_ms

    def site_offset_ms(self, site_id: str) -> int:
        """How far a scenario set this site's clock back (night-residency), 0 for most sites."""
        return next((s.run.offset_ms for s in self._slots if s.run.site.id == site_id), 0)

    @property
    def devices(self) -> list[SimDevice]:
        return [slot.device for slot in self._slots]

    def connect(self) -> None:
        """Connect every device; raises SimulationError when not even the first reaches the broker."""
        if not self._slots:
            return
        if not self._slots[0].device.start(self.options.connect_timeout_s):
            self.close()
            raise SimulationError(f"MQTT broker {self.options.mqtt_url} unreachable (set --mqtt-url or "
                                  f"SAFEWATCH_MQTT_URL, or start one with `safewatch stack up`)")
        for slot in self._slots[1:]:
            slot.device.start(self.options.connect_timeout_s)
        now = self.clock.now_ms()
        for slot in self._slots:
            slot.device.announce(now + slot.run.offset_ms)
        if any(sc.injects for sc in self.scenarios):
            self._injector = MqttClient(self.options.mqtt_url, f"{self.district.name}-sim-injector")
            self._injector.connect(self.options.connect_timeout_s)

    def _cadence_ms(self) -> float:
        if self.options.rate:
            return len(self._slots) * 1000.0 * self.clock.speed / self.options.rate
        return self.options.cadence_s * 1000.0

    def run(self, stop: threading.Event | None = None) -> Summary:
        stop = stop or threading.Event()
        self._begin_ms = self.clock.now_ms()
        started = time.monotonic()
        n, cadence = len(self._slots), self._cadence_ms()
        heap: list[tuple[float, int]] = [(self._begin_ms + int(i * cadence / max(n, 1)), i) for i in range(n)]
        heapq.heapify(heap)
        end = None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        while heap and not stop.is_set():
            now = time.monotonic()
            if end is not None and now >= end:
                break
            due, i = heap[0]
            wait = self.clock.real_seconds_until(int(due))
            if wait > 0:
                stop.wait(min(wait, 0.25, end - now if end is not None else 0.25))
                continue
            heapq.heapreplace(heap, (due + cadence, i))
            self._tick(self._slots[i], int(due))
        self._ran_s += time.monotonic() - started
        return self.summary()

    def _tick(self, slot: _Slot, due_ms: int) -> None:
        run = slot.run
        ts = due_ms + run.offset_ms
        values = run.model.values_at(ts)
        elapsed = (due_ms - self._begin_ms) / 1000.0
        silent = False
        for sc in run.scenarios:
            t, st = elapsed - sc.start_s, self.stats[sc.label]
            self._track(sc, t, st)
            if t >= 0.0 and self._t_prev[sc.label] < sc.duration_s:
                for inj in sc.injections(self._t_prev[sc.label], min(t, sc.duration_s), ts, values):
                    self._inject(inj.topic, inj.payload)
                    st.injected[inj.kind] += 1
                self._t_prev[sc.label] = t
            if not sc.active(t):
                continue
            if slot.device_id in sc.silent_devices(t):
                silent = True
                st.silenced += 1
            if any(m in sc.metrics for m in slot.metrics):
                sc.shape(t, values)
                st.shaped += 1
        self._power(slot, silent)
        if not silent:
            clamp(values, run.model.limits.physical())
            slot.device.send(ts, {m: values[m] for m in slot.metrics})

    def _track(self, sc: Scenario, t: float, st: ScenarioStats) -> None:
        state = "pending" if t < 0.0 else "running" if t <= sc.duration_s else "done"
        if state != st.state:
            if st.state == "pending":
                self._note(f"{sc.label} started: {sc.summary}")
            if state == "done":
                self._note(f"{sc.label} finished")
            st.state = state

    def _power(self, slot: _Slot, silent: bool) -> None:
        device = slot.device
        if silent and not device.dark:
            device.power_off()
            self._note(f"{device.key} lost power")
        elif not silent and device.dark:
            device.power_on()
            self._note(f"{device.key} powered on again")

    def _inject(self, topic: str, payload: bytes) -> None:
        if self._injector is None:
            return
        try:
            self._injector.publish(topic, payload, qos=1)
        except MqttError as err:
            self._note(f"bad-payload publish failed: {err}")

    def summary(self) -> Summary:
        ds = self.devices
        return Summary(devices=len(ds), published=sum(d.published for d in ds), buffered=sum(d.buffered for d in ds),
                       uploads=sum(d.uploads for d in ds), waiting=sum(d.pending for d in ds),
                       dropped=sum(d.dropped for d in ds), statuses=sum(d.statuses for d in ds),
                       scenarios=dict(self.stats), seconds=self._ran_s)

    def close(self, *, say_offline: bool = True) -> None:
        """Switch every device off properly (offline status unless ``say_offline=False``, disconnect)."""
        now = self.clock.now_ms()
        for slot in self._slots:
            slot.device.close(now + slot.run.offset_ms, say_offline=say_offline)
        if self._injector is not None:
            self._injector.close()
            self._injector = None


def readings_of(payload: bytes) -> list[dict[str, object]]:
    """The readings in one telemetry payload (an object, or an uploaded array), for tests and the demo."""
    body = json.loads(payload)
    return body if isinstance(body, list) else [body]
