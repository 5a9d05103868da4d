"""The SSE stream over a real HTTP server (uvicorn in a thread): latency, isolation, heartbeats,
Last-Event-ID resumption from the book."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn

from service.stack import free_port
from tests.test_api.conftest import ADMIN, Api, build_api


@dataclass
class Frame:
    id: int | None
    data: dict[str, Any] | None
    comment: str | None
    received: float


class Server:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.url = f"http://127.0.0.1:{free_port()}"
        config = uvicorn.Config(api.app, host="127.0.0.1", port=int(self.url.rsplit(":", 1)[1]),
                                log_level="warning", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.readers: list[threading.Thread] = []

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.api.service.stop()  # closes the broadcaster: every stream ends
        for r in self.readers:
            r.join(timeout=5)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "uvicorn did not stop"

    def listen(self, headers: dict[str, str]) -> queue.Queue[Frame]:
        """Opens the stream in a thread; frames arrive on the queue once the server has subscribed."""
        frames: queue.Queue[Frame] = queue.Queue()
        opened = threading.Event()

        def read() -> None:
            with httpx.Client(base_url=self.url, timeout=httpx.Timeout(10.0, read=30.0)) as c, \
                    c.stream("GET", "/api/v1/stream", headers=headers) as r:
                assert r.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                for line in r.iter_lines():
                    if line.startswith("retry:"):
                        opened.set()
                    elif line.startswith(":"):
                        frames.put(Frame(None, None, line[1:].strip(), time.monotonic()))
                    elif line:
                        key, _, value = line.partition(": ")
                        fields[key] = value
                    elif "data" in fields:
                        frames.put(Frame(int(fields["id"]), json.loads(fields["data"]), None, time.monotonic()))
                        fields = {}

        t = threading.Thread(target=read, daemon=True)
        t.start()
        self.readers.append(t)
        assert opened.wait(10), "the stream did not open"
        return frames


def next_event(frames: queue.Queue[Frame], timeout: float = 5.0) -> Frame:
    deadline = time.monotonic() + timeout
    while True:
        frame = frames.get(timeout=max(0.01, deadline - time.monotonic()))
        if frame.data is not None:
            return frame


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
