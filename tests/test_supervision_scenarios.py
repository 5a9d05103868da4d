"""The hazard scenarios of the simulators, played over HTTP against a real uvicorn server: an
enterprise self-reports and takes a hazard to review; another commits to a short limit, misses it,
and the overdue job (clock moved past the limit) reports it up. ``safewatch simulate --api`` plays
both beside the devices."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from service.cli import main
from service.stack import StackInfo, free_port
from simulators.scenarios.supervision import HazardScenarioError, run_hazard_scenario
from store.state import StateStore
from store.state.records import dt_to_ms
from tests.support.hazards import ADMIN_TOKEN, HazardApi
from tests.support.supervision import YAML


@pytest.fixture
def served(state_url: str) -> Iterator[tuple[HazardApi, str]]:
    store = StateStore(state_url)
    api = HazardApi(store)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.client.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.02)
    yield api, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    api.alerts.stop()
    store.close()


def test_self_report_reaches_review(served: tuple[HazardApi, str]) -> None:
    api, url = served
    hid = run_hazard_scenario("self-report", url, ADMIN_TOKEN, api.district, "S1")
    h = api.state.get_hazard(hid)
    assert h is not None and h.state.value == "review" and h.source.value == "self_report"
    assert [e.type.value for e in h.events] == ["listed", "planned", "progress", "attachment", "submitted"]
    assert h.events[0].by.startswith("ent-s1-")


def test_overdue_climb(served: tuple[HazardApi, str]) -> None:
    api, url = served
    hid = run_hazard_scenario("overdue-climb", url, ADMIN_TOKEN, api.district, "S2")
    h = api.state.get_hazard(hid)
    assert h is not None and h.state.value == "rectifying"
    limit = dt_to_ms(h.deadline)
    first = api.sup.run_overdue(limit + 1000)
    assert [m.event.departments for m in first] == [()]  # sector and street are already on it
    later = api.sup.run_overdue(limit + 86_400_000 + 1000)
    assert [m.event.departments for m in later] == [("bureau",)]
    assert api.state.get_hazard(hid).overdue  # type: ignore[union-attr]


def test_unknown_scenario_is_named(served: tuple[HazardApi, str]) -> None:
    api, url = served
    with pytest.raises(HazardScenarioError, match="unknown hazard scenario 'nope'"):
        run_hazard_scenario("nope", url, ADMIN_TOKEN, api.district, "S1")


def test_simulate_plays_both_through_the_api_beside_the_devices(served: tuple[HazardApi, str], stack: StackInfo,
                                                                 district: str, tmp_path: Path, capsys) -> None:
    api, url = served
    config = tmp_path / "district.yaml"
    config.write_text(YAML.replace("district: sup", f"district: {district}"), encoding="utf-8")
    code = main(["simulate", "--config", str(config), "--mqtt-url", stack.mqtt_url, "--duration", "2",
                 "--api", url, "--token", ADMIN_TOKEN, "--scenario", "self-report:S1",
                 "--scenario", "overdue-climb:S2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"scenario self-report@S1 at +0 s (simulated) through {url}" in err
    assert out.startswith("simulate: 4 devices published ")  # the devices ran as usual
    by_site = {h.site: h for h in api.state.list_hazards()}
    assert (by_site["S1"].state.value, by_site["S2"].state.value) == ("review", "rectifying")
    assert f"hazard scenario self-report@S1: hazard {by_site['S1'].id}" in err
    assert f"hazard scenario overdue-climb@S2: hazard {by_site['S2'].id}" in err


def test_simulate_with_a_token_the_api_refuses_exits_1(served: tuple[HazardApi, str], capsys) -> None:
    api, url = served
    token = api.state.issue_token("trade", "operator")  # a department's token, not the admin's
    example = Path(__file__).resolve().parent / "contract_example.yaml"
    assert main(["simulate", "--config", str(example), "--api", url, "--token", token,
                 "--scenario", "self-report"]) == 1
    assert "refused the token (403)" in capsys.readouterr().err
    assert api.state.list_hazards() == []
