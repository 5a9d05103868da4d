"""Rule windows restored from InfluxDB (``AlertService.restore_windows``): a restart or takeover
neither forgets a pending ``for`` timer or a trend window, nor raises an alert twice.

The "last process" is simulated by its readings in a real InfluxDB and its alerts in a real
state database; the new process is a fresh AlertService fed live readings through ingest's
hand-off, on event time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from alerting.engine import Engine
from alerting.restore import WindowRestorer
from alerting.service import AlertService
from domain import Batch, District, Reading, parse_district
from domain.alerts import AlertState, EventType
from service.stack import StackInfo
from store.influx import InfluxClient
from store.state import StateStore
from tests.support.helpers import influx_write

NOW = [0]  # this test's "now", whole seconds (the restore's 1 s steps align to the epoch)


@pytest.fixture(autouse=True)
def _now() -> None:
    NOW[0] = int(time.time()) * 1000


def district_of(name: str) -> District:
    return parse_district(yaml.safe_load(f"""
district: {name}
timezone: UTC
departments: [{{id: ops, name: Ops, kind: sector}}, {{id: office, name: Office, kind: territorial}}]
streets: [{{id: s1, name: Street, office: office}}]
sites:
  - {{id: G1, name: Station 1, family: gas_station, street: s1, sector: ops}}
  - {{id: G2, name: Station 2, family: gas_station, street: s1, sector: ops}}
rules:
  - {{id: pressure, family: gas_station, metric: tank_pressure_kpa, kind: threshold,
     levels: {{yellow: 10}}, for: 60s}}
  - {{id: vapor-up, family: gas_station, metric: vapor_lel, kind: trend, window: 5m, min_points: 5,
     slope_above: 1.0}}
routing: [{{match: {{}}, notify: [sector]}}]
"""))


@pytest.fixture
def influx(stack: StackInfo, influx_db: str) -> Iterator[InfluxClient]:
    client = InfluxClient(stack.influx_url, influx_db)
    yield client
    client.close()


def past(stack: StackInfo, db: str, site: str, metric: str, points: list[tuple[int, float]]) -> None:
    """What the last process stored: (ms before NOW, value) readings of device d1."""
    influx_write(stack, db, [f"gas_station,device=d1,site={site},street=s1 {metric}={v} {NOW[0] - ago}"
                             for ago, v in points])


def live(alerts: AlertService, site: str, metric: str, at: int, value: float) -> None:
    alerts.handle_batch(Batch((Reading("gas_station", site, "d1", "s1", NOW[0] + at, {metric: value}),)))


def fired_at(store: StateStore, rule: str) -> list[int]:
    return [int(ev.at.timestamp() * 1000) - NOW[0] for a in store.list_alerts(limit=100) if a.rule == rule
            for ev in (store.get_alert(a.id) or a).events if ev.type is EventType.FIRED]


@pytest.mark.parametrize(("elapsed_s", "restore", "fires_at_s"), [
    (30, True, 30),  # half the 60 s served before the restart: fires 30 s after it
    (50, True, 10),
    (30, False, 60),  # without the restore the timer starts again (today's behaviour)
])
def test_a_half_served_for_timer_fires_at_the_right_moment_once(
        stack: StackInfo, influx_db: str, influx: InfluxClient, store: StateStore,
        elapsed_s: int, restore: bool, fires_at_s: int) -> None:
    d = district_of(influx_db)
    past(stack, influx_db, "G1", "tank_pressure_kpa", [(ago * 1000, 12.0) for ago in range(elapsed_s, 0, -1)])
    alerts = AlertService(d, store)
    if restore:
        assert alerts.restore_windows(None, influx) > 0
    assert store.list_alerts() == []  # the restore itself raises nothing
    for s in range(0, 90):
        live(alerts, "G1", "tank_pressure_kpa", s * 1000, 12.0)
    [at] = fired_at(store, "pressure")
    assert abs(at - fires_at_s * 1000) <= 1000  # to within the restore's 1 s step


def test_a_trend_window_survives_a_restart(stack: StackInfo, influx_db: str, influx: InfluxClient,
                                           store: StateStore) -> None:
    d = district_of(influx_db)
    # 4 minutes rising at 0.9/min (below the 1.0 limit), then a jump: the slope over the window
    # passes the limit only with the old points in the fit.
    rise = [(ago * 1000, 5 + 0.9 * (240 - ago) / 60) for ago in range(240, 0, -10)]
    past(stack, influx_db, "G1", "vapor_lel", rise)
    alerts = AlertService(d, store)
    alerts.restore_windows({"G1"}, influx)
    assert store.list_alerts() == []
    assert alerts.latest("G1")["vapor_lel"][0] == pytest.approx(rise[-1][1])  # last values are back
    live(alerts, "G1", "vapor_lel", 10_000, rise[-1][1] + 2.3)
    assert [a.rule for a in store.list_alerts()] == ["vapor-up"]
    fresh = AlertService(d, store)  # control: without the window one reading says nothing
    live(fresh, "G2", "vapor_lel", 10_000, rise[-1][1] + 2.3)
    assert len(store.list_alerts()) == 1


def test_an_alert_the_book_has_firing_is_not_raised_again_and_one_it_lacks_is_raised_once(
        stack: StackInfo, influx_db: str, influx: InfluxClient, store: StateStore) -> None:
    d = district_of(influx_db)
    for site in ("G1", "G2"):  # both sites past the level for 2 minutes: both fired before
        past(stack, influx_db, site, "tank_pressure_kpa", [(ago * 1000, 12.0) for ago in range(120, 0, -1)])
    first = AlertService(d, store)
    for s in range(-120, 1):
        live(first, "G1", "tank_pressure_kpa", s * 1000, 12.0)  # G1's alert made it into the book
    [g1] = store.list_alerts()
    assert g1.site == "G1" and g1.state is AlertState.OPEN
    alerts = AlertService(d, store)  # G2's never did (the last process died first)
    alerts.restore_windows(None, influx)
    assert len(store.list_alerts()) == 1
    for s in range(1, 5):
        live(alerts, "G1", "tank_pressure_kpa", s * 1000, 12.0)
        live(alerts, "G2", "tank_pressure_kpa", s * 1000, 12.0)
    by_site = {a.site: a for a in store.list_alerts()}
    assert set(by_site) == {"G1", "G2"}
    assert fired_at(store, "pressure").count(1000) == 1  # G2: at once, its `for` long served
    g1_events = (store.get_alert(by_site["G1"].id) or g1).events
    assert [e.type for e in g1_events] == [EventType.FIRED]


def test_a_partition_taken_over_gets_its_windows_and_not_the_others(stack: StackInfo, influx_db: str,
                                                                    influx: InfluxClient) -> None:
    """The takeover path (``service.engines``): a fresh engine, not yet in use, restored for its sites."""
    d = district_of(influx_db)
    for site in ("G1", "G2"):
        past(stack, influx_db, site, "tank_pressure_kpa", [(ago * 1000, 12.0) for ago in range(30, 0, -1)])
    engine = Engine(d)
    WindowRestorer(d, influx)(engine, ["G1"])  # G2 is another partition's
    fired = {site: [s.at_ms - NOW[0] for t in range(0, 40)
                    for s in engine.process(Batch((Reading("gas_station", site, "d1", "s1", NOW[0] + t * 1000,
                                                           {"tank_pressure_kpa": 12.0}),)))]
             for site in ("G1", "G2")}
    assert [abs(t - 30_000) <= 1000 for t in fired["G1"]] == [True]
    assert fired["G2"] == []  # its timer starts with this process: 60 s from now


def test_every_metric_s_last_value_is_restored_with_its_own_time(stack: StackInfo, influx_db: str,
                                                                  influx: InfluxClient, store: StateStore) -> None:
    """Not only the metrics a rule remembers: a partly filled ``latest`` would keep the API from
    reading the rest from InfluxDB, so every stored metric's newest reading comes back."""
    d = district_of(influx_db)
    past(stack, influx_db, "G1", "tank_level_pct", [(2 * 3600_000, 61.0), (3600_000, 62.5)])  # no rule reads it
    past(stack, influx_db, "G1", "tank_temp_c", [(5_000, 18.25)])
    past(stack, influx_db, "G1", "vapor_lel", [(ago * 1000, 4.0 + ago / 100) for ago in range(60, 0, -10)])
    past(stack, influx_db, "G2", "tank_level_pct", [(7_000, 40.0)])
    alerts = AlertService(d, store)
    alerts.restore_windows(None, influx)
    latest = alerts.latest("G1")
    assert {m: (v, t - NOW[0]) for m, (v, t, _dev) in latest.items() if m != "vapor_lel"} == {
        "tank_level_pct": (62.5, -3600_000), "tank_temp_c": (18.25, -5_000)}
    assert latest["vapor_lel"][0] == pytest.approx(4.1)  # the trend window's last step
    engine = Engine(d)  # the takeover path: the partition's sites only
    WindowRestorer(d, influx)(engine, ["G2"])
    assert engine.latest("G2") == {"tank_level_pct": (40.0, NOW[0] - 7_000, "d1")}
    assert engine.latest("G1") == {}
    assert store.list_alerts() == []
