"""``safewatch demo``: its incident sequence, its alert board, and a real end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain import load_district, parse_district
from service.cli import main
from service.demo import DEMO_DEADLINES, demo_config, demo_scenarios
from service.demo_view import Board, readings_counters
from service.stack import stack_status
from tests.support.district import district_data
from transport.mqtt import Message

REPO = Path(__file__).resolve().parents[1]
SITES = """
- {id: V1, name: Mall, kind: mall, family: crowd_venue, street: main, sector: trade, capacity: 900, area_m2: 900}
- {id: S1, name: Shelter, kind: shelter, family: underground, street: main, sector: trade}
- {id: S2, name: Shelter Two, kind: shelter, family: underground, street: main, sector: trade}
- {id: B1, name: Basement, kind: basement, family: underground, street: main, sector: trade}
"""


def config() -> dict[str, Any]:
    """The shared frame with a sector department, whose stations and sites all belong to it."""
    data = district_data("demotest", SITES, gas_stations=4, sector="trade")
    data["departments"].insert(1, {"id": "trade", "name": "Trade", "kind": "sector"})
    return data


DISTRICT = parse_district(config(), "<demotest>")
TZ = DISTRICT.tz


def local_ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ).timestamp() * 1000)


@pytest.mark.parametrize(("now", "night"), [("2026-07-01 14:00", False), ("2026-07-01 23:20", True)])
def test_the_sequence_starts_with_a_vapour_leak_and_spreads_over_the_sites(now, night):
    scenarios = demo_scenarios(DISTRICT, local_ms(now))
    assert (scenarios[0].name, scenarios[0].start_s) == ("vapor-leak", 0)
    sites = [sc.site.id for sc in scenarios]
    assert len(sites) == len(set(sites)), "one incident per site, so each alert is easy to tell apart"
    assert ("night-residency" in {sc.name for sc in scenarios}) is night
    assert [sc.start_s for sc in scenarios] == sorted(sc.start_s for sc in scenarios)


def test_the_sequence_skips_what_the_config_has_no_site_for():
    gas_only = parse_district({**config(), "sites": config()["sites"][:2]}, "<gas>")
    names = [sc.name for sc in demo_scenarios(gas_only, local_ms("2026-07-01 14:00"))]
    assert names == ["vapor-leak", "device-silent", "bad-payloads", "tank-overpressure"]


def event(event_id: str, department: str, alert_id: str, state: str, severity: str, updated: str) -> Message:
    body = {"event_id": event_id, "type": "fired", "department": department,
            "alert": {"id": alert_id, "rule": "vapor-level", "site": "G1", "severity": severity, "state": state,
                      "updated_at": updated, "departments": ["trade", "office"], "message": "vapour 12 %LEL"}}
    topic = f"demotest/alerts/{department}/{severity}"
    return Message(topic, json.dumps(body).encode(), 1, False, 1, False, 0)


def test_the_board_groups_an_event_s_departments_and_counts_open_alerts():
    board = Board(DISTRICT)
    board.on_message(event("e1", "trade", "a1", "open", "blue", "2026-07-01T10:00:00.000+08:00"))
    board.on_message(event("e1", "office", "a1", "open", "blue", "2026-07-01T10:00:00.000+08:00"))
    board.on_message(event("e2", "trade", "a2", "resolved", "red", "2026-07-01T10:01:00.000+08:00"))
    board.on_message(Message("demotest/alerts/x/red", b"not json", 1, False, 2, False, 0))
    assert board.ready_events(settle_s=60) == [], "waits for the other departments' copies"
    lines = board.ready_events(settle_s=0)
    assert len(lines) == 2
    assert "fired blue vapor-level at G1 Station One: vapour 12 %LEL → office, trade" in lines[0]
    by_severity, by_department = board.open_counts()
    assert by_severity == {"red": 0, "orange": 0, "yellow": 0, "blue": 1}
    assert by_department == {"trade": {"red": 0, "orange": 0, "yellow": 0, "blue": 1},
                             "office": {"red": 0, "orange": 0, "yellow": 0, "blue": 1}}
    # A late, older copy of a1 does not undo a newer state.
    board.on_message(event("e3", "trade", "a1", "resolved", "blue", "2026-07-01T10:05:00.000+08:00"))
    board.on_message(event("e0", "trade", "a1", "open", "blue", "2026-07-01T09:59:00.000+08:00"))
    assert board.open_counts()[0]["blue"] == 0


def hazard_event(event_id: str, department: str, type_: str, note: str) -> Message:
    body = {"event_id": event_id, "type": type_, "department": department,
            "hazard": {"id": "7", "site": "G1", "level": "general", "title": "应急照明失效", "state": "rectifying",
                       "events": [{"type": type_.removeprefix("hazard_"), "note": note}]}}
    return Message(f"demotest/hazards/{department}/general", json.dumps(body).encode(), 1, False, 3, False, 0)


def test_the_board_prints_hazard_events_with_their_step():
    board = Board(DISTRICT)
    board.on_message(hazard_event("hazard-1", "trade", "hazard_listed", ""))
    board.on_message(hazard_event("hazard-2", "trade", "hazard_overdue", "overdue by 1m: step 2 of 3 (after 1m)"))
    board.on_message(hazard_event("hazard-2", "bureau", "hazard_overdue", "overdue by 1m: step 2 of 3 (after 1m)"))
    listed, overdue = board.ready_events(settle_s=0)
    assert " hazard_listed general hazard 7 at G1 Station One: 应急照明失效 → trade" in listed
    assert overdue.endswith("hazard_overdue general hazard 7 at G1 Station One: 应急照明失效 "
                            "(overdue by 1m: step 2 of 3 (after 1m)) → bureau, trade")
    assert board.open_counts()[0] == {"red": 0, "orange": 0, "yellow": 0, "blue": 0}  # hazards are not alerts


XICHENG = REPO / "configs" / "xicheng.yaml"


def test_the_demo_s_supervision_timings_are_minutes_and_leave_the_config_alone():
    text = XICHENG.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    district = load_district(XICHENG)
    demo = demo_config(district, data)
    assert data == yaml.safe_load(text), "the loaded config is not changed in place"
    steps = demo["supervision"]["overdue"]
    assert [s["after"] for s in steps] == ["0s", "1m", "2m"]
    assert [s["notify"] for s in steps] == [s["notify"] for s in data["supervision"]["overdue"]]
    assert demo["supervision"]["deadlines"] == DEMO_DEADLINES
    assert {**demo, "supervision": None} == {**data, "supervision": None}  # nothing else changes
    sup = parse_district(demo, "<demo>").config.supervision
    assert (sup.deadlines.general, sup.deadlines.major) == (180.0, 120.0)
    assert sup.list_ == district.config.supervision.list_
    assert XICHENG.read_text(encoding="utf-8") == text


def test_a_config_without_an_overdue_chain_gets_the_default_one_in_minutes():
    data = config()
    data.pop("supervision", None)
    demo = demo_config(parse_district(data, "<plain>"), data)
    chain = parse_district(demo, "<demo>").config.supervision.overdue
    assert chain is not None and [(s.after, s.notify) for s in chain] == [(0.0, ["sector", "street"]),
                                                                          (60.0, ["bureau"])]


def test_readings_counters_sum_over_labels():
    text = ("# HELP safewatch_readings_accepted_total x\nsafewatch_readings_accepted_total 120.0\n"
            'safewatch_readings_rejected_total{reason="not json"} 3.0\n'
            'safewatch_readings_rejected_total{reason="out of range"} 4.0\n'
            "safewatch_readings_accepted_created 1.7e9\n")
    assert readings_counters(text) == {"accepted": 120.0, "rejected": 7.0}


def test_a_bad_config_exits_2_before_starting_anything(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("district: x\n")
    assert main(["demo", "--config", str(bad), "--data", str(tmp_path / "demo")]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


SERVE_MISSING = importlib.util.find_spec("service.serve") is None


@pytest.mark.skipif(SERVE_MISSING, reason="service/serve.py (run_serve, the `safewatch serve` command) is not written "
                                          "yet: the demo needs serve to raise alerts")
@pytest.mark.timeout(240)
def test_demo_shows_an_alert_within_a_minute_and_stops_all_it_started(tmp_path):
    data = tmp_path / "demo"
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "demo", "--plain", "--duration", "60",
                             "--data", str(data)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=200)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
    assert proc.returncode == 0, out
    api = re.search(r"API (http://127\.0\.0\.1:\d+)\s+docs \1/docs\s+admin token (\S+)", out)
    assert api, out
    fired = [line for line in out.splitlines() if " fired " in line]
    assert fired, f"no alert within the demo's minute:\n{out}"
    assert any("vapor" in line for line in fired), out
    # The demo's supervision runs in minutes: hazards are listed (the enterprises' and the alerts')
    # and the overdue-climb hazard goes overdue about half a minute in (step 1 of the chain).
    assert "overdue steps 0s, 1m, 2m past the deadline, for the demo" in out
    assert [line for line in out.splitlines() if " hazard_listed " in line], out
    assert [line for line in out.splitlines() if " hazard_overdue " in line and "step 1 of" in line], out
    assert re.search(r"simulate: \d+ devices published \d+ readings", out)
    status = stack_status(data / "stack")
    assert not status["running"], "the demo started the stack, so it stops it"
    assert "demo stopped" in out
    pid_line = re.search(r"serve: pid (\d+) healthy", out)
    assert pid_line, out
    serve_pid = int(pid_line.group(1))
    assert not Path(f"/proc/{serve_pid}").exists() or b"serve" not in Path(f"/proc/{serve_pid}/cmdline").read_bytes()
