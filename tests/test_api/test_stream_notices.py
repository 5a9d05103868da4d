"""The SSE stream carries hazard notices too: scoped by the notice's departments (site users by
site), framed without an ``id:`` so Last-Event-ID stays on alert events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import cast

import orjson
import pytest

from api.routes.stream import _Stream
from domain.principal import ADMIN_TOKEN_PRINCIPAL, Principal, Role, Via
from notify import Broadcaster, Notice
from store.state import StateStore
from tests.support.api import Api, build_api, district_of

HAZARD = Notice(subject="hazard", subject_id="5", event_id="hazard-9", type="hazard_listed",
                body={"event_id": "hazard-9", "type": "hazard_listed", "hazard": {"id": "5", "site": "GS-001"}},
                departments=("commerce", "street_a"), site="GS-001", family="gas_station", street="a")
CALLERS = {
    "commerce": (Principal(Via.TOKEN, Role.OPERATOR, department="commerce"), True),
    "fire": (Principal(Via.TOKEN, Role.VIEWER, department="fire"), False),
    "its site": (Principal(Via.SESSION, Role.SITE, username="gs", sites=frozenset({"GS-001"})), True),
    "another site": (Principal(Via.SESSION, Role.SITE, username="cv", sites=frozenset({"CV-001"})), False),
    "admin": (ADMIN_TOKEN_PRINCIPAL, True),
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    state = StateStore(f"sqlite:///{tmp_path}/state.db")
    a = build_api(district_of("d"), state, None, heartbeat_s=0.2)
    yield a
    a.service.stop()
    state.close()


async def frames_after(stream: _Stream, broadcaster: Broadcaster, notice: Notice, n: int) -> list[bytes]:
    gen = cast(AsyncGenerator[bytes, None], stream.events())  # an async generator: it can be closed
    out = [await gen.__anext__()]  # "retry:": the stream has subscribed
    broadcaster.publish(notice)
    while len(out) < n + 1:
        out.append(await asyncio.wait_for(gen.__anext__(), 5))
    await gen.aclose()
    return out[1:]


@pytest.mark.parametrize("who", list(CALLERS))
def test_hazard_notices_reach_whoever_sees_them(api: Api, who: str) -> None:
    caller, sees = CALLERS[who]
    b = Broadcaster()
    stream = _Stream(api.ctx, caller, api.state, b, since=0, recheck=lambda: caller)  # the credential holds
    [frame] = asyncio.run(frames_after(stream, b, HAZARD, 1))
    if not sees:
        assert frame == b": keep-alive\n\n"
        return
    assert not frame.startswith(b"id:")  # a hazard id is no Last-Event-ID the book could resume from
    body = orjson.loads(frame.removeprefix(b"data: ").strip())
    assert body == {"event_id": "hazard-9", "type": "hazard_listed", "department": caller.department,
                    "hazard": {"id": "5", "site": "GS-001"}}
