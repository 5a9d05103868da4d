"""Deadman rules: silence found by the sweep, offline statuses, per-site rules, family filters."""

from __future__ import annotations

import pytest

from alerting.engine import Engine
from domain import Batch, Reading
from domain.alerts import AlertKey
from tests.rules.engine_harness import Case, R, Status, Sweep, make_district, ms, run_case

SILENT = "{id: silent, kind: deadman, family: '*', after: 2m, severity: yellow}"
V = {"vapor_lel": 1.0}
CO = {"co_ppm": 1.0}

CASES = [
    Case("sweep fires after strictly more than `after`; the next reading resolves", SILENT, [
        (R(0, V), []),
        (Sweep(120), []),
        (Sweep(120.001), [("silent[d1] fire yellow", "no data from device d1 at GS-1 for 2 min (after 2m)")]),
        (Sweep(180), []),  # already firing
        (R(200, V), [("silent[d1] clear", "device d1 at GS-1 reporting again")]),
        (Sweep(300), []),
        (Sweep(321), ["silent[d1] fire yellow"]),
    ]),
    Case("every device is watched on its own", SILENT, [
        (R(0, V), []),
        (R(100, V, device="d2"), []),
        (Sweep(150), ["silent[d1] fire yellow"]),
        (Sweep(250), ["silent[d2] fire yellow"]),
        (R(260, V, device="d2"), ["silent[d2] clear"]),
    ]),
    Case("offline fires at once; online resolves nothing; the next reading does", SILENT, [
        (R(0, V), []),
        (Status(10, online=False), [("silent[d1] fire yellow", "device d1 at GS-1 went offline")]),
        (Sweep(500), []),
        (Status(600, online=True), []),
        (R(610, V), ["silent[d1] clear"]),
    ]),
    Case("an offline older than the newest reading is stale", SILENT, [
        (R(10, V), []),
        (Status(5, online=False), []),
        ((R(20, V), Status(15, online=False)), []),  # one batch: the reading came later
        ((R(25, V), Status(30, online=False)), ["silent[d1] fire yellow"]),  # here the offline did
    ]),
    Case("a device is known once it sends anything, a status included", SILENT, [
        (Sweep(10_000), []),
        (Status(0, online=True, device="d3"), []),
        (Sweep(121), ["silent[d3] fire yellow"]),
    ]),
    Case("per site: fires only when every device of the site is silent",
         "{id: silent, kind: deadman, family: gas_station, after: 1m, per: site, severity: orange}", [
        ((R(0, V), R(0, V, device="d2")), []),
        (R(50, V, device="d2"), []),
        (Sweep(61), []),
        (Status(70, online=False), []),  # one device offline does not silence the site
        (Sweep(111), [("silent[GS-1] fire orange", "no data from site GS-1 for 1 min")]),
        (R(120, V), ["silent[GS-1] clear"]),
    ]),
    Case("family filter: an underground deadman ignores gas stations",
         "{id: silent, kind: deadman, family: underground, after: 1m}", [
        ((R(0, V, site="GS-1"), R(0, CO, device="u1")), []),
        (Sweep(1000), ["silent[u1] fire yellow"]),
        (Status(1001, online=False, site="GS-1"), []),
    ]),
    Case("device and site rules side by side",
         f"[{SILENT}, {{id: site-silent, kind: deadman, after: 5m, per: site, severity: red}}]", [
        (R(0, V), []),
        (Sweep(121), ["silent[d1] fire yellow"]),
        (Sweep(301), ["site-silent[GS-1] fire red"]),
        (R(302, V), ["silent[d1] clear", "site-silent[GS-1] clear"]),
    ]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_deadman(case: Case) -> None:
    run_case(case)


def test_a_device_known_from_before_a_restart_is_missed_without_a_first_reading() -> None:
    engine = Engine(make_district(SILENT))
    assert engine.know_device("GS-1", "d7", ms(0))
    assert not engine.know_device("nowhere", "d7", ms(0))
    [signal] = engine.sweep(ms(121))
    assert signal.key == AlertKey("silent", "GS-1", "d7", "")
    assert signal.value == pytest.approx(121.0) and signal.threshold == 120.0
    [clear] = engine.process(Batch((Reading("gas_station", "GS-1", "d7", "st", ms(130), V),)))
    assert not clear.firing and clear.at_ms == ms(130)
