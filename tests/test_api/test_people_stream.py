"""The SSE stream for people: the session cookie is accepted as well as a bearer token, a site
user gets only its sites' events, live and when catching up from the book, and an open stream
follows its credential: it ends when that stops counting and follows a role change (SQLite and
PostgreSQL)."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from domain.clock import now_ms
from store.influx import InfluxClient
from store.state import StateStore
from tests.support.api import ADMIN, build_api, district_of
from tests.support.people import PASSWORD, PeopleApi, cheap_hashes
from tests.support.stream import Frame, Server, next_event


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


def ends(frames: queue.Queue[Frame], timeout: float = 5.0) -> list[Frame]:
    """The frames up to the stream's closing ``ended`` comment (fails if none comes in time)."""
    got: list[Frame] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = frames.get(timeout=max(0.01, deadline - time.monotonic()))
        if frame.comment is not None and frame.comment.startswith("ended"):
            return got
        got.append(frame)


WITHDRAWALS = ["sign_out", "disable", "new_password", "revoke_token", "token_expires"]


@pytest.mark.parametrize("how", WITHDRAWALS)
def test_an_open_stream_ends_when_its_credential_no_longer_counts(people_server: Server, how: str) -> None:
    api = people_server.api
    assert isinstance(api, PeopleApi)
    if how.endswith("token") or how == "token_expires":
        expires = now_ms() + 1500 if how == "token_expires" else None
        token = api.state.issue_token("commerce", "viewer", expires)
        headers = {"Authorization": f"Bearer {token}"}
    else:
        api.add_user("olga", "viewer", "commerce")
        headers = cookie_of(api, "olga")
    live = people_server.listen(headers)
    before = api.fire("GS-001", "vapor_lel", 60.0)
    assert next_event(live).data["alert"]["id"] == before.id  # type: ignore[index]
    if how == "sign_out":
        r = api.client_for().delete("/api/v1/session", headers=headers | {
            "X-CSRF-Token": api.client_for().get("/api/v1/session", headers=headers).json()["csrf_token"]})
        assert r.status_code == 204
    elif how == "disable":
        assert api.client.patch("/api/v1/users/olga", headers=ADMIN, json={"disabled": True}).status_code == 200
    elif how == "new_password":
        r = api.client.patch("/api/v1/users/olga", headers=ADMIN, json={"password": "another long one"})
        assert r.status_code == 200
    elif how == "revoke_token":
        assert api.client.post("/api/v1/tokens/revoke", headers=ADMIN, json={"token": token}).status_code == 200
    else:
        time.sleep(1.6)  # past expires_at
    time.sleep(0.5)  # a heartbeat (0.3 s) or more: re-checked
    api.reading("GS-001", "vapor_lel", 30.0)  # an event the caller would otherwise get
    frames = ends(live)
    assert [f for f in frames if f.data is not None] == []
    with pytest.raises(queue.Empty):  # and nothing after the end
        live.get(timeout=0.5)


def test_a_role_change_applies_to_an_open_stream(people_server: Server) -> None:
    api = people_server.api
    assert isinstance(api, PeopleApi)
    api.add_user("olga", "operator", "civil_defence")
    live = people_server.listen(cookie_of(api, "olga"))
    r = api.client.patch("/api/v1/users/olga", headers=ADMIN, json={"department": "commerce"})
    assert r.status_code == 200 and r.json()["department"] == "commerce"
    time.sleep(0.5)  # re-checked at a heartbeat
    api.fire("UG-001", "o2_pct", 19.0)  # civil_defence's: no longer hers
    gs = api.fire("GS-001", "vapor_lel", 60.0)
    assert alert_ids(live, 1) == [gs.id]
