"""The SSE stream for people: the session cookie is accepted as well as a bearer token, and a site
user gets only its sites' events, live and when catching up from the book (SQLite and PostgreSQL)."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import pytest

from store.influx import InfluxClient
from store.state import StateStore
from tests.test_api.conftest import build_api, district_of
from tests.test_api.people_support import PASSWORD, PeopleApi, cheap_hashes
from tests.test_api.test_stream import Frame, Server, next_event


@pytest.fixture
def people_server(state_url: str, district: str, influx: InfluxClient, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[Server]:
    cheap_hashes(monkeypatch)
    store = StateStore(state_url)
    a = build_api(district_of(district), store, influx, heartbeat_s=0.3)
    with Server(PeopleApi(a.app, a.ctx, a.service, store)) as s:
        yield s
    store.close()


def cookie_of(api: PeopleApi, username: str) -> dict[str, str]:
    r = api.client_for().post("/api/v1/session", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Cookie": f"safewatch_session={r.cookies['safewatch_session']}"}


def alert_ids(frames: queue.Queue[Frame], n: int) -> list[str]:
    return [next_event(frames).data["alert"]["id"] for _ in range(n)]  # type: ignore[index]


def test_a_site_user_streams_only_its_sites_by_cookie(people_server: Server) -> None:
    api = people_server.api
    assert isinstance(api, PeopleApi)
    api.add_user("sam", "site", None, ("GS-001",))
    api.add_user("olga", "operator", "civil_defence")
    sam, olga = cookie_of(api, "sam"), cookie_of(api, "olga")
    sam_live, olga_live = people_server.listen(sam), people_server.listen(olga)
    ug = api.fire("UG-001", "o2_pct", 19.0)
    gs = api.fire("GS-001", "vapor_lel", 60.0)
    api.reading("GS-001", "vapor_lel", 30.0)  # severity_changed on GS
    assert alert_ids(sam_live, 2) == [gs.id, gs.id]
    assert alert_ids(olga_live, 1) == [ug.id]
    # catching up from the book after a reconnect: the same filter
    replay = people_server.listen(sam | {"Last-Event-ID": "0"})
    assert alert_ids(replay, 2) == [gs.id, gs.id]
    with pytest.raises(queue.Empty):
        next_event(replay, timeout=0.8)
