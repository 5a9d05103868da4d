"""The SSE stream over a real HTTP server (uvicorn in a thread): latency, isolation, heartbeats,
Last-Event-ID resumption from the book."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.api import ADMIN, Api, build_api
from tests.support.stream import Server, next_event


@pytest.fixture
def server(api_district, state, influx) -> Iterator[Server]:
    with Server(build_api(api_district, state, influx, heartbeat_s=0.3)) as s:
        yield s


def test_an_event_reaches_a_connected_client_in_under_a_second(server: Server):
    api = server.api
    frames = server.listen(api.as_("commerce"))
    latencies = []
    for value in (60.0, 30.0, 12.0):  # fired red, then two severity changes
        started = time.monotonic()
        api.reading("GS-001", "vapor_lel", value)
        frame = next_event(frames)
        latencies.append(frame.received - started)
        assert frame.data is not None and frame.data["alert"]["value"] == value
    assert max(latencies) < 1.0, latencies
    print(f"SSE latency reading→client: max {max(latencies) * 1000:.1f} ms")


def test_the_stream_carries_the_webhook_body_and_only_the_callers_events(server: Server):
    api = server.api
    commerce, civil = server.listen(api.as_("commerce")), server.listen(api.as_("civil_defence"))
    admin = server.listen(ADMIN)
    ug = api.fire("UG-001", "o2_pct", 19.0)
    gs = api.fire("GS-001", "vapor_lel", 60.0)
    first = next_event(commerce)
    assert first.data is not None
    assert (first.data["alert"]["id"], first.data["type"], first.data["department"]) == (gs.id, "fired", "commerce")
    assert first.id == first.data["event_id"]
    assert {"event_id", "type", "department", "alert"} == set(first.data)
    assert first.data["alert"]["started_at"].endswith("+08:00")
    civ = next_event(civil)
    assert civ.data is not None and civ.data["alert"]["id"] == ug.id
    assert [next_event(admin).data["alert"]["id"] for _ in range(2)] == [ug.id, gs.id]  # type: ignore[index]
    # acknowledging is an event too, with who and why
    api.client.post(f"/api/v1/alerts/{ug.id}/ack", json={"note": "crew sent"}, headers=api.as_("street_b"))
    ack = next_event(civil)
    assert ack.data is not None and ack.data["type"] == "acknowledged"
    assert ack.data["alert"]["events"][-1]["by"] == "token:street_b"


def test_an_idle_stream_gets_heartbeats(server: Server):
    frames = server.listen(ADMIN)
    first = frames.get(timeout=2)
    assert (first.comment, first.data) == ("keep-alive", None)


def test_last_event_id_resumes_from_the_book(server: Server):
    api = server.api
    api.fire("GS-001", "vapor_lel", 60.0)  # fired
    api.fire("UG-001", "o2_pct", 19.0)  # not commerce's
    api.reading("GS-001", "vapor_lel", 30.0)  # severity_changed
    api.reading("GS-001", "vapor_lel", 5.0)  # resolved
    events = [e for e, _ in api.state.events_since(0)]
    assert [e.type.value for e in events] == ["fired", "fired", "severity_changed", "resolved"]
    frames = server.listen(api.as_("commerce") | {"Last-Event-ID": str(events[0].id)})
    missed = [next_event(frames) for _ in range(2)]
    assert [(f.id, f.data["type"]) for f in missed] == [  # type: ignore[index]
        (events[2].id, "severity_changed"), (events[3].id, "resolved")]
    api.reading("GS-001", "vapor_lel", 60.0)  # reopened, live
    live = next_event(frames)
    assert live.data is not None and live.data["type"] == "reopened" and (live.id or 0) > events[3].id
    # a fresh connection without Last-Event-ID starts with what happens next
    fresh = server.listen(api.as_("commerce"))
    api.reading("GS-001", "vapor_lel", 5.0)  # resolved again
    assert next_event(fresh).id == next_event(frames).id


def test_a_bad_last_event_id_is_refused(shared_api: Api):
    r = shared_api.client.get("/api/v1/stream", headers=ADMIN | {"Last-Event-ID": "yesterday"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
