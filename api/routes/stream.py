"""``GET /api/v1/stream``: the caller's alert (and hazard) events as Server-Sent Events.

A client that reconnects with ``Last-Event-ID`` first gets what it missed from the book, then
the live events; the subscription is taken *before* reading the book, so an event committed
in between arrives at least once, and ids already sent are skipped. A subscriber that falls
behind (its queue overflows) catches up from the book the same way instead of losing events.
Hazard notices have string ids (``hazard-{id}``): their frames carry no ``id:`` line, so a
client's Last-Event-ID stays the last alert event id, which the book can resume from.

A stream lasts far longer than the check of its credential when it opened, so the credential is
checked again at every heartbeat and, before anything is delivered, once ``RECHECK_S`` (or the
heartbeat, if shorter) has passed since the last check. A sign-out, a disabled user, a new
password, a revoked or expired token end the stream (a last ``: ended: ...`` comment); a role,
department or sites change applies to what it delivers from then on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import API_CHECKS, Caller, Credentials, Ctx, Principal, State, current_principal, sees_alert
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, UNAVAILABLE, Responses
from domain.alerts import Alert, AlertEvent
from domain.principal import Role
from notify import AsyncSubscriber, Broadcaster, Notice, alert_notice

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)
CATCH_UP_PAGE = 1000
_RECENT = 4096  # ids of live events already sent, against duplicates from a catch-up or a reorder
RECHECK_S = 5.0
ENDED = b": ended: the credential no longer counts (signed out, user disabled, new password, token revoked " \
        b"or expired)\n\n"
log = logging.getLogger(__name__)


class _Stream:
    def __init__(self, ctx: Ctx, caller: Principal, state: Any, broadcaster: Broadcaster, since: int,
                 recheck: Callable[[], Principal | None]) -> None:
        self.ctx, self.caller, self.state, self.broadcaster = ctx, caller, state, broadcaster
        self.floor = since  # the client has every event up to here
        self.since = since  # the book has been read up to here
        self.recent: deque[int] = deque(maxlen=_RECENT)
        self.recheck = recheck
        self.recheck_s = min(RECHECK_S, ctx.sse_heartbeat_s)
        self.checked = time.monotonic()

    async def still_allowed(self, force: bool) -> bool:
        """Whether the caller's credential still counts (checked again when ``force`` or once
        ``recheck_s`` has passed); the caller is rebuilt as it now stands."""
        if not force and time.monotonic() - self.checked < self.recheck_s:
            return True
        try:
            caller = await run_in_threadpool(self.recheck)
        except Exception:
            # The state database being away is no withdrawal: a sign-out, a disabled user or a
            # revocation is written to that same database. Keep going; check again next time.
            log.warning("stream: re-checking the caller's credential failed; trying again later", exc_info=True)
            return True
        self.checked = time.monotonic()
        if caller is None:
            return False
        self.caller = caller
        return True

    def frame(self, event: AlertEvent, alert: Alert) -> bytes:
        return self.notice_frame(alert_notice(event, alert, self.ctx.district.tz))

    def notice_frame(self, notice: Notice) -> bytes:
        body = notice.payload(self.caller.department)
        if isinstance(notice.event_id, int):
            return b"id: %d\ndata: %s\n\n" % (notice.event_id, body)
        return b"data: %s\n\n" % body

    def sees(self, notice: Notice) -> bool:
        """As ``sees_alert``: site users by site, everyone else by the notice's departments."""
        if self.caller.role is Role.SITE:
            return self.caller.sees_site(notice.site)
        return self.caller.sees(notice.departments)

    async def catch_up(self) -> AsyncIterator[bytes]:
        while True:
            page = await run_in_threadpool(self.state.events_since, self.since, self.caller.department,
                                           CATCH_UP_PAGE)
            for event, alert in page:
                self.since = max(self.since, event.id)
                self.recent.append(event.id)
                if sees_alert(self.caller, alert):  # the query scopes departments, not a site user's sites
                    yield self.frame(event, alert)
            if len(page) < CATCH_UP_PAGE:
                return

    async def events(self) -> AsyncIterator[bytes]:
        heartbeat = self.ctx.sse_heartbeat_s
        sub: AsyncSubscriber = self.broadcaster.subscribe_async()
        try:
            yield b"retry: 3000\n\n"
            async for chunk in self.catch_up():
                yield chunk
            while True:
                notice = await sub.get_async(timeout=heartbeat)
                if notice is None:
                    if sub.overflowed:  # fell behind: read the rest from the book, then listen again
                        if not await self.still_allowed(force=False):
                            yield ENDED
                            return
                        sub.close()
                        sub = self.broadcaster.subscribe_async()
                        async for chunk in self.catch_up():
                            yield chunk
                        continue
                    if sub.finished:  # the service is shutting down
                        return
                    if not await self.still_allowed(force=True):
                        yield ENDED
                        return
                    yield b": keep-alive\n\n"
                    continue
                if not await self.still_allowed(force=False):
                    yield ENDED
                    return
                eid = notice.event_id
                sent = isinstance(eid, int) and (eid <= self.floor or eid in self.recent)
                if sent or not self.sees(notice):
                    continue
                if isinstance(eid, int):
                    self.recent.append(eid)
                yield self.notice_frame(notice)
        finally:
            sub.close()


EVENT_STREAM: Responses = {200: {
    "description": "text/event-stream: `id: EVENT_ID` and `data: {\"event_id\", \"type\", \"department\", "
                   "\"alert\"}` per alert event (the webhook body); `: keep-alive` comments between",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/stream", response_class=StreamingResponse, responses=EVENT_STREAM | UNAVAILABLE)
async def stream_events(
    ctx: Ctx, caller: Caller, state: State, credential: Credentials,
    last_event_id: str | None = Header(
        None, alias="Last-Event-ID", max_length=20,
        description="resume after this event id (sent by reconnecting clients)"),
) -> StreamingResponse:
    """Server-Sent Events of the caller's alert events as they happen, resumable with Last-Event-ID."""
    if ctx.alerts is None:
        raise ApiError(503, "the alert service is not running in this process")
    broadcaster = ctx.alerts.broadcaster
    if last_event_id is None or not last_event_id.strip():
        since = await run_in_threadpool(state.last_event_id)
    elif last_event_id.strip().isdigit():
        since = int(last_event_id)
    else:
        raise ApiError(422, f"header Last-Event-ID: {last_event_id!r} is not an event id")
    stream = _Stream(ctx, caller, state, broadcaster, since, lambda: current_principal(ctx, credential))
    return StreamingResponse(stream.events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
