"""The engine skips readings that cannot change a key (``base.Tracker``'s quiet region): that
must never change a signal. Each workload is judged twice, by an engine that skips and by one
whose trackers are never quiet (every reading stepped, as before skipping existed), and the
two must agree on every signal, on what fires and on the latest values.

The workloads are random walks that cross levels up and down, with hysteresis bands, ``for``
periods, schedules (across midnight, and over a daylight-saving change), trends with slope
limits and forecasts, derived metrics, late and duplicate readings, non-finite values, device
statuses, sweeps, restores and a replay followed by ``settle``. Schedules end on odd minutes, so
their edges are not also the 15-minute steps at which a zone's offset is looked up again.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from alerting.engine import Engine
from alerting.rules.threshold import ThresholdTracker
from alerting.rules.trend import TrendTracker
from domain import Batch, DeviceStatus, District, Reading, parse_district
from domain.alerts import AlertKey, Signal
from domain.severity import Severity

_INF = float("inf")

RULES = """
- {id: vapor, family: gas_station, metric: vapor_lel, kind: threshold,
   levels: {blue: 10, yellow: 20, orange: 25, red: 50}, hysteresis: 2, for: 10s}
- {id: vapor-rise, family: gas_station, metric: vapor_lel, kind: trend, window: 5m, min_points: 5,
   slope_above: 1.0, forecast: {rule: vapor, level: red, within: 10m}, severity: orange}
- {id: pressure, family: gas_station, metric: tank_pressure_kpa, kind: threshold,
   levels: {blue: 2, red: 10}, hysteresis: 0.3}
- {id: level-fall, family: gas_station, metric: tank_level_pct, kind: trend, window: 2m, min_points: 3,
   slope_below: -1.5, severity: yellow}
- {id: leak, family: gas_station, metric: leak, kind: threshold, levels: {orange: 0.5}, for: 5s}
- {id: o2, family: underground, metric: o2_pct, kind: threshold, direction: below,
   levels: {blue: 20.0, yellow: 19.5, orange: 18.0, red: 16.0}, hysteresis: 0.3, for: 30s}
- {id: o2-fall, family: underground, metric: o2_pct, kind: trend, window: 10m, min_points: 5,
   slope_below: -0.1, forecast: {rule: o2, level: red, within: 15m}, severity: orange}
- {id: o2-fall-night, family: underground, metric: o2_pct, kind: trend, window: 3m, min_points: 3,
   slope_below: -0.2, schedule: {between: "22:07-01:53"}}
- {id: co-rise, family: underground, metric: co_ppm, kind: trend, window: 3m, min_points: 4,
   forecast: {rule: co, level: red, within: 5m}, severity: red}
- {id: co, family: underground, metric: co_ppm, kind: threshold, levels: {yellow: 26, red: 200}}
- {id: night, family: underground, metric: occupancy, kind: threshold, levels: {yellow: 0},
   schedule: {between: "23:00-06:00"}}
- {id: night-crowd, family: underground, metric: occupancy, kind: threshold, levels: {orange: 40},
   hysteresis: 5, for: 2m, schedule: {between: "01:37-03:29"}}
- {id: ratio, family: crowd_venue, metric: occupancy_ratio, kind: threshold,
   levels: {blue: 0.7, yellow: 0.8, red: 1.2}, hysteresis: 0.05, for: 1m}
- {id: ratio-rise, family: crowd_venue, metric: occupancy_ratio, kind: trend, window: 10m, min_points: 5,
   slope_above: 0.02, forecast: {rule: ratio, level: red, within: 15m}, severity: orange}
- {id: density, family: crowd_venue, metric: density_per_m2, kind: threshold, levels: {yellow: 1.0}}
- {id: silent, kind: deadman, family: "*", after: 2m}
- {id: site-silent, kind: deadman, family: underground, after: 5m, per: site}
"""

SITES = """
- {id: GS-1, name: gs, family: gas_station, street: st, sector: dep}
- {id: UG-1, name: ug, family: underground, street: st, sector: dep}
- {id: CV-1, name: cv, family: crowd_venue, street: st, sector: dep, capacity: 2000, area_m2: 500}
"""

# (metric, start, step σ, jump size, low, high) of each family's random walks
WALKS: dict[str, tuple[tuple[str, float, float, float, float, float], ...]] = {
    "gas_station": (("vapor_lel", 5.0, 0.8, 30.0, 0.0, 100.0), ("tank_pressure_kpa", 1.0, 0.4, 9.0, -5.0, 20.0),
                    ("tank_level_pct", 60.0, 1.5, 20.0, 0.0, 100.0), ("leak", 0.0, 0.0, 1.0, 0.0, 1.0)),
    "underground": (("o2_pct", 20.6, 0.15, 4.0, 10.0, 21.5), ("co_ppm", 8.0, 3.0, 150.0, 0.0, 400.0),
                    ("occupancy", 0.0, 6.0, 50.0, 0.0, 120.0)),
    "crowd_venue": (("occupancy", 1300.0, 40.0, 900.0, 0.0, 4000.0), ("inflow_per_min", 30.0, 5.0, 50.0, 0.0, 500.0)),
}
SITE_OF = {"gas_station": "GS-1", "underground": "UG-1", "crowd_venue": "CV-1"}


def district(zone: str) -> District:
    return parse_district({
        "district": "skiptest", "timezone": zone,
        "departments": [{"id": "dep", "name": "Dep", "kind": "sector"}],
        "streets": [{"id": "st", "name": "St", "office": "dep"}],
        "sites": yaml.safe_load(SITES), "rules": yaml.safe_load(RULES),
    }, "<skip test>")


def loud(self: Any, ts_ms: int | None = None) -> None:
    """A ``requiet`` whose quiet region is empty: every reading is stepped."""
    self.lo, self.hi, self.until = _INF, -_INF, -_INF


Action = tuple[str, Any]


def workload(seed: int, start_ms: int, n: int = 6000) -> list[Action]:
    """Batches of readings (and statuses), sweeps and restores, in time order with stragglers."""
    rng = random.Random(seed)
    state = {(fam, dev): {m: start for m, start, *_ in walk} for fam, walk in WALKS.items() for dev in ("d1", "d2")}
    ts = start_ms
    actions: list[Action] = []
    batch: list[Reading] = []
    statuses: list[DeviceStatus] = []
    for i in range(n):
        # Mostly dense readings (the skipping case), now and then minutes or hours apart.
        ts += rng.choice((0, 1, 7, 250, 800, 1000, 1000, 2000, 2343, 2344, 4687, 4688, 5000, 15_000, 61_000)) \
            if rng.random() > 0.01 else rng.choice((10 * 60_000, 47 * 60_000, 3 * 3600_000))
        fam = rng.choice(tuple(WALKS))
        dev = rng.choice(("d1", "d2"))
        values = state[(fam, dev)]
        for metric, _start, sigma, jump, low, high in WALKS[fam]:
            v = values[metric]
            if metric == "leak":
                v = 1.0 if rng.random() < 0.03 else (0.0 if rng.random() < 0.3 else v)
            elif rng.random() < 0.004:
                v += rng.choice((-1, 1)) * jump
            else:
                v += rng.gauss(0, sigma) + (0.02 * sigma * math.sin(i / 300))
            values[metric] = min(high, max(low, round(v, rng.choice((1, 2, 6)))))
        chosen = {m: v for m, v in values.items() if rng.random() < 0.8} or dict(values)
        if rng.random() < 0.01:
            chosen[next(iter(chosen))] = rng.choice((math.nan, math.inf, -math.inf))
        at = ts - rng.choice((0, 0, 0, 0, 0, 0, 0, 0, 3, 5000))  # a few late ones
        batch.append(Reading(fam, SITE_OF[fam], dev, "st", at, chosen))
        if rng.random() < 0.01:
            statuses.append(DeviceStatus(fam, SITE_OF[fam], dev, rng.random() < 0.5, ts - rng.choice((0, 9000))))
        if len(batch) >= rng.choice((1, 5, 40)):
            actions.append(("batch", Batch(tuple(batch), tuple(statuses))))
            batch, statuses = [], []
        if rng.random() < 0.003:
            actions.append(("sweep", ts + rng.choice((0, 150_000, 400_000))))
        if rng.random() < 0.002:
            rule, site, metric = rng.choice((("vapor", "GS-1", "vapor_lel"), ("o2", "UG-1", "o2_pct"),
                                             ("vapor-rise", "GS-1", "vapor_lel"), ("night", "UG-1", "occupancy"),
                                             ("ratio", "CV-1", "occupancy_ratio"), ("silent", "UG-1", "")))
            severity = rng.choice((Severity.BLUE, Severity.YELLOW, Severity.ORANGE, Severity.RED))
            actions.append(("restore", (AlertKey(rule, site, rng.choice(("d1", "d2")), metric), severity)))
    if batch:
        actions.append(("batch", Batch(tuple(batch), tuple(statuses))))
    return actions


def run(zone: str, actions: list[Action], replay: int) -> tuple[list[list[Signal]], dict[AlertKey, Severity],
                                                              dict[str, Any]]:
    engine = Engine(district(zone))
    # The first ``replay`` batches go through replay and settle, as after a restart.
    early = [r for kind, a in actions[:replay] if kind == "batch" for r in a.readings]
    if early:
        engine.replay(early)
        engine.settle(None, {})
    out: list[list[Signal]] = []
    for kind, arg in actions[replay:]:
        if kind == "batch":
            out.append(engine.process(arg))
        elif kind == "sweep":
            out.append(engine.sweep(arg))
        else:
            out.append([Signal.clear(k, family="", kind="unplaced", at_ms=0) for k in engine.restore([arg])])
    return out, engine.firing(), {site: engine.latest(site) for site in SITE_OF.values()}


def start(zone: str, local: str) -> int:
    return int(datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp() * 1000)


@pytest.mark.parametrize(("zone", "local", "seed", "replay"), [
    ("Asia/Shanghai", "2025-01-15T21:30:00", 1, 0),
    ("Asia/Shanghai", "2025-01-15T00:55:00", 2, 30),
    ("Europe/Berlin", "2025-03-29T22:40:00", 3, 0),  # the night the clocks go forward
    ("Europe/Berlin", "2025-10-25T22:40:00", 4, 10),  # and back
    ("Asia/Kathmandu", "2025-06-01T05:20:00", 5, 0),  # UTC+5:45
    ("America/St_Johns", "2025-11-01T20:00:00", 6, 0),  # UTC-3:30, and a change that night
])
def test_skipping_quiet_readings_changes_no_signal(zone: str, local: str, seed: int, replay: int,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    actions = workload(seed, start(zone, local))
    skipping = run(zone, actions, replay)
    with monkeypatch.context() as never_quiet:
        never_quiet.setattr(ThresholdTracker, "requiet", loud)
        never_quiet.setattr(TrendTracker, "requiet", loud)
        stepping = run(zone, actions, replay)
    signals = [s for batch in skipping[0] for s in batch]
    assert len(signals) > 100, "the workload should fire and clear a good deal"
    assert {s.key.rule for s in signals} >= {"vapor", "vapor-rise", "o2", "night", "ratio", "silent"}
    for i, (got, want) in enumerate(zip(skipping[0], stepping[0], strict=True)):
        assert got == want, f"action {i} {actions[replay + i][0]}"
    assert skipping[1:] == stepping[1:]


def _state(t: Any) -> tuple[Any, ...]:
    """What a step may change, less the time of the newest reading a trend notes."""
    if isinstance(t, ThresholdTracker):
        return t.level, t.severity, t.pending_since
    return t.severity, t.ring.points(), t.origin, t.pushes, t.st, t.sv, t.stt, t.stv


def _probe(step: Callable[[Any, float, int], Signal | None], tracker: Any, ts: int, rng: random.Random) -> None:
    """Step copies of ``tracker`` at the edges of its quiet region (its first and last
    skipped instants, its lowest and highest skipped values): nothing may change."""
    lo, hi, until = tracker.lo, tracker.hi, tracker.until
    if lo > hi or until <= ts + 1:
        return
    last = math.ceil(until) - 1 if until < _INF else ts + rng.choice((1, 60_000, 86_400_000))
    values = [v for v in (lo, hi) if -_INF < v < _INF] or [rng.uniform(-1000, 1000)]
    if len(values) == 2:
        values.append((lo + hi) / 2)
    for at in {ts + 1, last}:
        for value in values:
            clone = copy.copy(tracker)
            if isinstance(tracker, TrendTracker):
                clone.ring = copy.deepcopy(tracker.ring)
            assert step(clone, value, at) is None, (tracker.key, value, at - ts, until - ts)
            assert _state(clone) == _state(tracker), (tracker.key, value, at - ts, until - ts)


@pytest.mark.parametrize(("zone", "local", "seed"), [
    ("Asia/Shanghai", "2025-01-15T21:30:00", 11),
    ("Europe/Berlin", "2025-03-29T23:50:00", 12),  # 01:37-03:29 spans the clocks going forward
    ("Europe/Berlin", "2025-10-26T00:10:00", 13),  # and back
    ("Asia/Kathmandu", "2025-06-01T22:20:00", 14),
])
def test_a_quiet_region_is_quiet_up_to_its_edges(zone: str, local: str, seed: int,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each tracker's quiet region, right after each step: a reading at its edges changes nothing
    (so a region one ms or one ulp too wide would fail here, not only when a workload hits it)."""
    rng = random.Random(seed)
    original = ThresholdTracker.step, TrendTracker.step
    probes = 0

    def probing(step: Callable[[Any, float, int], Signal | None]) -> Callable[[Any, float, int], Signal | None]:
        def wrapped(self: Any, value: float, ts_ms: int) -> Signal | None:
            nonlocal probes
            signal = step(self, value, ts_ms)
            _probe(step, self, ts_ms, rng)
            probes += 1
            return signal
        return wrapped

    monkeypatch.setattr(ThresholdTracker, "step", probing(original[0]))
    monkeypatch.setattr(TrendTracker, "step", probing(original[1]))
    run(zone, workload(seed, start(zone, local), n=3000), replay=0)
    assert probes > 500


def test_most_readings_are_skipped_in_a_steady_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it: a steady sensor's readings reach no tracker between trend points."""
    d = district("Asia/Shanghai")
    engine = Engine(d)
    stepped = 0
    original = ThresholdTracker.step, TrendTracker.step

    def counting(step: Any) -> Any:
        def wrapped(self: Any, value: float, ts_ms: int) -> Signal | None:
            nonlocal stepped
            stepped += 1
            return step(self, value, ts_ms)  # type: ignore[no-any-return]
        return wrapped

    t0 = start("Asia/Shanghai", "2025-01-15T12:00:00")
    rng = random.Random(9)
    monkeypatch.setattr(ThresholdTracker, "step", counting(original[0]))
    monkeypatch.setattr(TrendTracker, "step", counting(original[1]))
    for i in range(20_000):  # 50 readings a second for 400 s
        values = {"vapor_lel": 3 + rng.uniform(-0.01, 0.01), "tank_pressure_kpa": 1.0,
                  "tank_level_pct": 60 + rng.uniform(-0.01, 0.01)}
        assert engine.process(Batch((Reading("gas_station", "GS-1", "d1", "st", t0 + 20 * i, values),))) == []
    # Thresholds never step; the two trends only when their line moves: a point enters every
    # 2.3 s and 0.9 s (window / 128), and as many leave once the window is full.
    assert stepped < 400 / 2.34 * 2 + 400 / 0.94 * 2
