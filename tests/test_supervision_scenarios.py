"""The hazard scenarios of the simulators, played over HTTP against a real uvicorn server: an
enterprise self-reports and takes a hazard to review; another commits to a short limit, misses it,
and the overdue job (clock moved past the limit) reports it up."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from service.stack import free_port
from simulators.scenarios.supervision import HazardScenarioError, run_hazard_scenario
from store.state import StateStore
from store.state.records import dt_to_ms
from tests.test_api.test_hazards import ADMIN_TOKEN, HazardApi


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
