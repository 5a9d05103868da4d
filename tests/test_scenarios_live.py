"""Every scenario at once against the real Mosquitto, checked on what actually crossed the broker.

One simulated district (three of each family, one scenario per site) runs at 300x until
every scenario has finished (about 15 real seconds); a subscriber keeps every message, and
each test reads its scenario's site from that record.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from domain import District, parse_district
from domain.families import device_metrics
from service.stack import StackInfo
from simulators.clock import SimClock
from simulators.fleet import SimOptions, Simulation, readings_of
from simulators.scenarios import ScenarioContext, parse_scenario
from simulators.tap import Tap
from tests.support.district import district_data
from transport.mqtt import Message

SPEED, SECONDS, START_S = 300.0, 16.0, 60.0

SITES = """
- {id: V1, name: Mall, kind: mall, family: crowd_venue, street: main, sector: bureau, capacity: 6000,
   area_m2: 15000}
- {id: V2, name: Hall, family: crowd_venue, street: main, sector: bureau, capacity: 800, area_m2: 1000}
- {id: S1, name: Shelter One, kind: shelter, family: underground, street: main, sector: bureau, area_m2: 900}
- {id: S2, name: Shelter Two, kind: shelter, family: underground, street: main, sector: bureau, area_m2: 700}
- {id: B1, name: Basement, kind: basement, family: underground, street: main, sector: bureau, area_m2: 500}
"""
RULES = """
- {id: vapor-level, family: gas_station, metric: vapor_lel, kind: threshold,
   levels: {blue: 8, yellow: 16, orange: 24, red: 40}, hysteresis: 2, for: 10s}
- {id: vapor-rising, family: gas_station, metric: vapor_lel, kind: trend, window: 5m, min_points: 5,
   slope_above: 1.0, severity: orange}
- {id: tank-pressure, family: gas_station, metric: tank_pressure_kpa, kind: threshold,
   levels: {blue: 2, red: 12}, hysteresis: 0.3, for: 30s}
- {id: occupancy-ratio, family: crowd_venue, metric: occupancy_ratio, kind: threshold,
   levels: {blue: 0.7, orange: 1.0, red: 1.2}, hysteresis: 0.05, for: 1m}
- {id: co-level, family: underground, metric: co_ppm, kind: threshold, levels: {blue: 13, red: 150},
   hysteresis: 2, for: 30s}
- {id: water-level, family: underground, metric: water_level_cm, kind: threshold,
   levels: {blue: 5, red: 40}, hysteresis: 2, for: 30s}
- {id: night, family: underground, metric: occupancy, kind: threshold, levels: {yellow: 0},
   schedule: {between: "23:00-06:00"}}
- {id: silent, kind: deadman, family: "*", after: 2m}
"""
SCENARIOS = ["vapor-leak:G1", "tank-overpressure:G2", "device-silent:G3", "crowd-surge:V1", "bad-payloads:V2",
             "co-buildup:S1", "night-residency:S2", "flooding:B1"]


@dataclass
class Record:
    district: District
    sim: Simulation
    messages: list[Message]

    def telemetry(self, site: str, device: str) -> list[tuple[int, dict[str, float]]]:
        """(ts, values) of every reading of a device, arrays unpacked, in time order."""
        topic = f"{self.district.name}/{self.district.sites[site].family}/{site}/{device}/telemetry"
        out = [(r["ts"], r["values"]) for m in self.messages if m.topic == topic for r in readings_of(m.payload)]
        return sorted(((int(ts), values) for ts, values in out  # type: ignore[call-overload]
                       if isinstance(values, dict)), key=lambda p: p[0])

    def scenario_time(self, ts: int, site: str) -> float:
        return (ts - self.sim.site_offset_ms(site) - self.sim.begin_ms) / 1000.0 - START_S


def stop_when_done(sim: Simulation, stop: threading.Event, timeout: float = 90.0) -> None:
    """Ends the run shortly after the last scenario finished (not at a fixed time: a busy
    machine may fall behind the clock), so every scenario's aftermath is on record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if all(st.state == "done" for st in sim.summary().scenarios.values()):
            time.sleep(60 * 2 / SPEED)  # two simulated minutes more
            break
        time.sleep(0.1)
    stop.set()


@pytest.fixture(scope="module")
def record(stack: StackInfo) -> Iterator[Record]:
    name = f"t_{uuid.uuid4().hex[:8]}"
    district = parse_district(district_data(name, SITES, RULES, gas_stations=3), "<live>")
    ctx = ScenarioContext(district, seed=11)
    scenarios = [parse_scenario(f"{spec}@{START_S:g}s", ctx) for spec in SCENARIOS]
    options = SimOptions(mqtt_url=stack.mqtt_url, speed=SPEED, seed=11)
    sim = Simulation(district, scenarios, options, clock=SimClock.for_run(SPEED, SECONDS))
    stop = threading.Event()
    with Tap(stack.mqtt_url, [f"{name}/#"]) as tap:
        sim.connect()
        watcher = threading.Thread(target=stop_when_done, args=(sim, stop), daemon=True)
        watcher.start()
        try:
            sim.run(stop)
        finally:
            stop.set()
            watcher.join()
            sim.close()
        assert tap.wait_for(lambda ms: sum(1 for m in ms if m.topic.endswith("/status")) >= 2 * len(sim.devices),
                            timeout=10), "every device's online and offline status"
        yield Record(district, sim, tap.messages())


def test_every_scenario_ran_to_its_end(record):
    states = {label: st.state for label, st in record.sim.summary().scenarios.items()}
    assert states == {sc.label: "done" for sc in record.sim.scenarios}


def test_good_readings_follow_the_contract_and_none_is_lost(record):
    for device in record.sim.devices:
        _, family, site, name = device.key.split("/")
        if site == "V2":
            continue  # bad-payloads publishes malformed messages on its topics on purpose
        metrics = device_metrics(family)
        readings = record.telemetry(site, name)
        assert len(readings) > 100, f"{device.key} published too little"
        for _, values in readings:
            assert values and all(metrics[m].accepts(v) for m, v in values.items()), (device.key, values)
        sent = device.published + device.buffered - device.pending - device.dropped
        assert len(readings) == sent, f"{device.key}: {sent} sent (with uploaded buffers), {len(readings)} arrived"


@pytest.mark.parametrize(("site", "device", "metric", "top", "lowest", "scale"), [
    ("G1", "vapor-1", "vapor_lel", 40, 8, 1),
    ("G2", "tank-1", "tank_pressure_kpa", 12, 2, 1),
    ("V1", "counter-1", "occupancy", 1.2, 0.7, 6000),      # occupancy_ratio levels, times capacity
    ("S1", "air-1", "co_ppm", 150, 13, 1),
    ("B1", "panel-1", "water_level_cm", 40, 5, 1),
])
def test_incident_crosses_the_rule_s_top_level_from_a_quiet_start_and_returns(record, site, device, metric, top,
                                                                              lowest, scale):
    series = [(record.scenario_time(ts, site), v[metric]) for ts, v in record.telemetry(site, device)]
    before = [v for t, v in series if t < 0]
    during = [v for t, v in series if t >= 0]
    assert before and max(before) < lowest * scale, "the background stays below the first level"
    assert max(during) > top * scale
    sc = next(s for s in record.sim.scenarios if s.site.id == site)
    after = [v for t, v in series if t > sc.duration_s + 30]
    assert after and max(after) < lowest * scale, "the incident clears"


def test_vapor_leak_rises_slowly_before_it_crosses_red(record):
    sc = next(s for s in record.sim.scenarios if s.name == "vapor-leak")
    series = [(record.scenario_time(ts, "G1"), v["vapor_lel"]) for ts, v in record.telemetry("G1", "vapor-1")]
    creep = [(t, v) for t, v in series if 0 <= t <= sc.creep_s]
    assert len(creep) >= 5, "enough creeping points for the trend rule's min_points"
    n = len(creep)
    mean_t, mean_v = sum(t for t, _ in creep) / n, sum(v for _, v in creep) / n
    slope = sum((t - mean_t) * (v - mean_v) for t, v in creep) / sum((t - mean_t) ** 2 for t, _ in creep) * 60
    assert 2.0 <= slope <= 4.0, f"creep of {slope:.2f}/min: above the trend rule's 1.0, far from a jump"
    assert max(v for _, v in creep) < 8, "still below the first level while creeping"
    first_red = next(t for t, v in series if v > 40)
    assert first_red > sc.creep_s


def test_device_silent_drops_with_its_will_and_comes_back(record):
    sc = next(s for s in record.sim.scenarios if s.name == "device-silent")
    status_topic = f"{record.district.name}/gas_station/G3/{sc.device}/status"
    statuses = [json.loads(m.payload) for m in record.messages if m.topic == status_topic]
    states = [s["state"] for s in statuses]
    assert states[:3] == ["online", "offline", "online"], states
    assert statuses[1] == {"state": "offline"}, "the broker's will (no ts: fixed at connect time)"
    assert states[-1] == "offline", "switched off properly at the end"
    times = [record.scenario_time(ts, "G3") for ts, _ in record.telemetry("G3", sc.device)]
    gaps = [(a, b) for a, b in itertools.pairwise(times) if b - a > 60]
    assert len(gaps) == 1
    (last_before, first_after), = gaps
    assert last_before < 5 and first_after >= sc.silence_s
    assert first_after - last_before >= sc.silence_s > 120, "silent for longer than the deadman's 2m"
    assert times[-1] > sc.duration_s, "it reports again after coming back"


def test_bad_payloads_publishes_every_malformed_kind(record):
    sc = next(s for s in record.sim.scenarios if s.name == "bad-payloads")
    injected = record.sim.summary().scenarios[sc.label].injected
    kinds = {i.kind for i in sc.kinds(0, {"occupancy": 1.0})}
    assert set(injected) == kinds and all(n == sc.rounds for n in injected.values())
    prefix = record.district.name
    seen = [m for m in record.messages if "/V2/" in m.topic or "/NO-SUCH-SITE/" in m.topic]
    payloads = [m.payload for m in seen]
    assert b'\xff\xfe{"values": {}}' in payloads
    assert any(m.topic.startswith(f"{prefix}/crowd_venue/NO-SUCH-SITE/") for m in seen)
    assert any(m.topic.startswith(f"{prefix}/gas_station/V2/") for m in seen), "a family that does not match"
    decoded = [json.loads(p) for p in payloads if p.startswith(b"{") and p.endswith(b"}")]
    values = [d.get("values", {}) for d in decoded if isinstance(d.get("values"), dict)]
    assert {"occupancy": "high"} in values
    assert any(v.get("inflow_per_min", 0) > 100_000 for v in values), "an out-of-range value"
    assert any(isinstance(d.get("ts"), int) and d["ts"] > record.sim.begin_ms + 3_000_000 for d in decoded)


def test_night_residency_puts_people_in_the_shelter_inside_the_night_window(record):
    sc = next(s for s in record.sim.scenarios if s.name == "night-residency")
    during = [(ts, v["occupancy"]) for ts, v in record.telemetry("S2", "panel-1")
              if 0 <= record.scenario_time(ts, "S2") <= sc.duration_s]
    assert during and all(occ >= sc.people > 0 for _, occ in during)
    for ts, _ in during:
        local = datetime.fromtimestamp(ts / 1000, record.district.tz)
        assert local.hour >= 23 or local.hour < 6, local
