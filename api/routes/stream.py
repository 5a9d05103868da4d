"""``GET /api/v1/stream``: the caller's alert events as Server-Sent Events.

A client that reconnects with ``Last-Event-ID`` first gets what it missed from the book, then
the live events; the subscription is taken *before* reading the book, so an event committed
in between arrives at least once, and ids already sent are skipped. A subscriber that falls
behind (its queue overflows) catches up from the book the same way instead of losing events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from alerting.notify.broadcast import AsyncSubscriber, Broadcaster
from alerting.notify.payload import notification_body
from api.deps import API_CHECKS, Caller, Ctx, Principal, State, sees_alert
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, UNAVAILABLE, Responses
from domain.alerts import Alert, AlertEvent

router = APIRouter(prefix="/api/v1", tags=["stream"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)
CATCH_UP_PAGE = 1000
_RECENT = 4096  # ids of live events already sent, against duplicates from a catch-up or a reorder


class _Stream:
    def __init__(self, ctx: Ctx, caller: Principal, state: Any, broadcaster: Broadcaster, since: int) -> None:
        self.ctx, self.caller, self.state, self.broadcaster = ctx, caller, state, broadcaster
        self.floor = since  # the client has every event up to here
        self.since = since  # the book has been read up to here
        self.recent: deque[int] = deque(maxlen=_RECENT)

    def frame(self, event: AlertEvent, alert: Alert) -> bytes:
        body = notification_body(event, alert, self.caller.department, self.ctx.district.tz)
        return b"id: %d\ndata: %s\n\n" % (event.id, body)

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
                        sub.close()
                        sub = self.broadcaster.subscribe_async()
                        async for chunk in self.catch_up():
                            yield chunk
                        continue
                    if sub.finished:  # the service is shutting down
                        return
                    yield b": keep-alive\n\n"
                    continue
                event, alert = notice.event, notice.alert
                sent = event.id <= self.floor or event.id in self.recent
                if sent or not sees_alert(self.caller, alert):
                    continue
                self.recent.append(event.id)
                yield self.frame(event, alert)
        finally:
            sub.close()


EVENT_STREAM: Responses = {200: {
    "description": "text/event-stream: `id: EVENT_ID` and `data: {\"event_id\", \"type\", \"department\", "
                   "\"alert\"}` per alert event (the webhook body); `: keep-alive` comments between",
    "content": {"text/event-stream": {"schema": {"type": "string"}}}}}


@router.get("/stream", response_class=StreamingResponse, responses=EVENT_STREAM | UNAVAILABLE)
async def stream_events(
    ctx: Ctx, caller: Caller, state: State,
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
    stream = _Stream(ctx, caller, state, broadcaster, since)
    return StreamingResponse(stream.events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
