"""The SSE feed across processes (``notify.relay``): events committed by another AlertService on
the same state database reach this one's broadcaster once; this one's own events are not doubled."""

from __future__ import annotations

import time
from collections.abc import Callable

import yaml

from alerting.service import AlertService
from domain import Batch, District, Reading, parse_district
from notify import Planner
from notify.broadcast import Subscriber
from notify.relay import Relay
from store.state import StateStore


def district() -> District:
    return parse_district(yaml.safe_load("""
district: relay
timezone: UTC
departments: [{id: ops, name: Ops, kind: sector}, {id: office, name: Office, kind: territorial}]
streets: [{id: s1, name: Street, office: office}]
sites:
  - {id: G1, name: Station 1, family: gas_station, street: s1, sector: ops}
  - {id: G2, name: Station 2, family: gas_station, street: s1, sector: ops}
rules:
  - {id: lel, family: gas_station, metric: vapor_lel, kind: threshold, levels: {yellow: 20}}
routing: [{match: {}, notify: [sector]}]
"""))


def reading(alerts: AlertService, site: str, at_ms: int, value: float) -> None:
    alerts.handle_batch(Batch((Reading("gas_station", site, "d1", "s1", at_ms, {"vapor_lel": value}),)))


def drain(sub: Subscriber, relay: Relay, rounds: int = 3) -> list[int | str]:
    got: list[int | str] = []
    for _ in range(rounds):
        relay.poll()
        while (n := sub.get(timeout=0.05)) is not None:
            got.append(n.event_id)
    return got


def test_events_of_another_process_arrive_once_and_local_ones_are_not_doubled(
        make_store: Callable[[], StateStore]) -> None:
    d = district()
    here, there = AlertService(d, make_store()), AlertService(d, make_store())
    relay = Relay(here.state, here.broadcaster, Planner(d.name, d.tz, mqtt_topics=False).notice, gap_s=0.2)
    relay.start()
    sub = here.broadcaster.subscribe()
    try:
        t = int(time.time() * 1000)
        reading(there, "G1", t, 30.0)  # fired, in the other process
        reading(here, "G2", t, 30.0)  # fired, here
        reading(there, "G1", t + 1000, 5.0)  # resolved, there
        got = drain(sub, relay)
        book = [e.id for e, _ in here.state.events_since(0)]
        assert len(book) == 3
        assert sorted(got) == book  # every event once, whichever process raised it
        assert relay.relayed == 2
        assert drain(sub, relay) == []  # nothing comes round again
        time.sleep(0.3)
        reading(there, "G1", t + 2000, 30.0)  # reopened, there
        assert drain(sub, relay) == [book[-1] + 1]
    finally:
        relay.stop()
        sub.close()
        here.stop()
        there.stop()
