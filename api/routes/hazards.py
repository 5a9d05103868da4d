"""Hazards on the books (contract section 10): list, file, plan, progress, evidence, submit, verify.

Scoped like alerts: a department sees the hazards routed to it, a site user its own sites'; a
hazard the caller may not see answers 404. Who may move what is decided in
``supervision.access``; every change is in the audit trail as ``hazard:{id}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from api.deps import API_CHECKS, Audit, Caller, Ctx, State
from api.errors import ApiError
from api.limits import MULTIPART_SLACK
from api.routes import AUTH_RESPONSES, BAD_BODY, FORBIDDEN, NOT_FOUND, Responses, _error
from api.schemas_supervision import (
    AttachmentOut,
    HazardIn,
    HazardOut,
    HazardStateName,
    LevelName,
    PlanIn,
    ProgressIn,
    SourceName,
    SubmitIn,
    VerifyIn,
)
from domain.hazards import HazardLevel, HazardSource, HazardState, Plan
from domain.principal import Principal, Role
from store.state.hazard_reads import HazardFilter
from supervision import EVIDENCE_CHUNK, EVIDENCE_MAX_BYTES, HazardError, Ledger, read_evidence

router = APIRouter(prefix="/api/v1/hazards", tags=["hazards"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES)
CONFLICT: Responses = _error(409, "the hazard's state does not allow this, or its alerts still fire")
MOVE = NOT_FOUND | FORBIDDEN | CONFLICT | BAD_BODY
UPLOAD = MOVE | _error(413, "larger than 10 MB") | _error(415, "not a JPEG, PNG or PDF by its content")


def get_ledger(request: Request, ctx: Ctx, state: State) -> Ledger:
    """The process's ledger, or (an API without the supervision service) one made here once."""
    if ctx.supervision is not None:
        return ctx.supervision.ledger
    ledger: Ledger | None = getattr(request.app.state, "ledger", None)
    if ledger is None:
        ledger = Ledger(ctx.district, state, None, None if ctx.alerts is None else ctx.alerts.close)
        request.app.state.ledger = ledger
    return ledger


def scoped(caller: Principal, f: HazardFilter) -> HazardFilter:
    """The filter narrowed to what the caller may see."""
    if caller.is_admin:
        return f
    if caller.role is Role.SITE:
        return replace(f, sites=sorted(caller.sites))
    return replace(f, department=caller.department or "\x00")  # no department: sees nothing


@contextmanager
def answers() -> Iterator[None]:
    """A refused move becomes its answer: 403, 404, 409, 413, 415 or 422 with the reason."""
    try:
        yield
    except HazardError as err:
        raise ApiError(err.status, err.detail) from None


@router.get("", response_model=list[HazardOut])
def list_hazards(
    request: Request, ctx: Ctx, caller: Caller, state: State,
    state_: HazardStateName | None = Query(None, alias="state"),
    site: str | None = Query(None, max_length=64),
    street: str | None = Query(None, max_length=64),
    sector: str | None = Query(None, max_length=64),
    level: LevelName | None = None,
    source: SourceName | None = None,
    overdue: bool | None = None,
    limit: int = Query(100, ge=1, le=1000),
    before: str | None = Query(None, max_length=32, description="a hazard id: page to older hazards"),
) -> list[HazardOut]:
    """Hazards the caller may see, newest first, without their events."""
    f = HazardFilter(state=None if state_ is None else HazardState(state_), site=site, street=street,
                     sector=sector, level=level, source=source, overdue=overdue)
    try:
        hazards = state.list_hazards(scoped(caller, f), limit=limit, before=before)
    except ValueError as err:
        raise ApiError(422, f"query {err}") from None
    return [HazardOut.of(h, ctx.district.tz) for h in hazards]


@router.post("", status_code=201, response_model=HazardOut, responses=FORBIDDEN | BAD_BODY)
def file_hazard(body: HazardIn, request: Request, ctx: Ctx, caller: Caller, state: State,
                audit: Audit) -> HazardOut:
    """File a hazard: a site user's self-report for its own site, or a department's inspection."""
    ledger = get_ledger(request, ctx, state)
    source = None if body.source is None else HazardSource(body.source)
    with answers():
        move = ledger.file(caller, body.site, body.title, body.description, HazardLevel(body.level), source)
    audit.record("hazard.file", f"hazard:{move.hazard.id}", f"{move.hazard.source.value} at {body.site}")
    return HazardOut.of(move.hazard, ctx.district.tz)


@router.get("/{hazard_id}", response_model=HazardOut, responses=NOT_FOUND)
def get_hazard(hazard_id: str, request: Request, ctx: Ctx, caller: Caller, state: State) -> HazardOut:
    """One hazard with its events, oldest first."""
    with answers():
        h = get_ledger(request, ctx, state).readable(caller, hazard_id)
    return HazardOut.of(h, ctx.district.tz)


@router.post("/{hazard_id}/plan", response_model=HazardOut, responses=MOVE)
def file_plan(hazard_id: str, body: PlanIn, request: Request, ctx: Ctx, caller: Caller, state: State,
              audit: Audit) -> HazardOut:
    """File the rectification plan with the five essentials (→ rectifying)."""
    plan = Plan(measures=body.measures, owner=body.owner, funds=body.funds, deadline=body.deadline,
                contingency=body.contingency)
    with answers():
        move = get_ledger(request, ctx, state).plan(caller, hazard_id, plan)
    audit.record("hazard.plan", f"hazard:{hazard_id}", f"deadline {body.deadline.isoformat()}")
    return HazardOut.of(move.hazard, ctx.district.tz)


@router.post("/{hazard_id}/progress", response_model=HazardOut, responses=MOVE)
def add_progress(hazard_id: str, body: ProgressIn, request: Request, ctx: Ctx, caller: Caller,
                 state: State, audit: Audit) -> HazardOut:
    """Record a progress note."""
    with answers():
        move = get_ledger(request, ctx, state).progress(caller, hazard_id, body.note)
    audit.record("hazard.progress", f"hazard:{hazard_id}")
    return HazardOut.of(move.hazard, ctx.district.tz)


@router.post("/{hazard_id}/submit", response_model=HazardOut, responses=MOVE)
def submit(hazard_id: str, request: Request, ctx: Ctx, caller: Caller, state: State, audit: Audit,
           body: SubmitIn | None = None) -> HazardOut:
    """Report the rectification done (rectifying → review)."""
    with answers():
        move = get_ledger(request, ctx, state).submit(caller, hazard_id, None if body is None else body.note)
    audit.record("hazard.submit", f"hazard:{hazard_id}")
    return HazardOut.of(move.hazard, ctx.district.tz)


@router.post("/{hazard_id}/verify", response_model=HazardOut, responses=MOVE)
def verify(hazard_id: str, body: VerifyIn, request: Request, ctx: Ctx, caller: Caller, state: State,
           audit: Audit) -> HazardOut:
    """Verify a rectification: accept (→ closed, 销账) or reject (→ rectifying); sector or admin only."""
    with answers():
        move = get_ledger(request, ctx, state).verify(caller, hazard_id, body.accept, body.note)
    audit.record("hazard.verify", f"hazard:{hazard_id}", "accepted" if body.accept else "rejected")
    return HazardOut.of(move.hazard, ctx.district.tz)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(EVIDENCE_CHUNK):
        yield chunk


@router.post("/{hazard_id}/attachments", status_code=201, response_model=AttachmentOut, responses=UPLOAD)
async def add_attachment(hazard_id: str, request: Request, ctx: Ctx, caller: Caller, state: State,
                         audit: Audit, file: UploadFile = File(...)) -> AttachmentOut:
    """Attach evidence: JPEG, PNG or PDF judged by content, at most 10 MB; kept in the state database."""
    # Async only to read the upload in chunks; the state database calls block, so each runs in
    # the threadpool and the event loop (the SSE streams, every other request) keeps going.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > EVIDENCE_MAX_BYTES + MULTIPART_SLACK:
        raise ApiError(413, f"file: larger than {EVIDENCE_MAX_BYTES // (1024 * 1024)} MB ({declared} bytes sent)")
    ledger = get_ledger(request, ctx, state)
    with answers():  # 404 before reading a body the caller cannot attach
        await run_in_threadpool(ledger.readable, caller, hazard_id)
    name = (file.filename or "upload")[:255]
    with answers():
        evidence = await read_evidence(name, _chunks(file))
        att, _move = await run_in_threadpool(ledger.attach, caller, hazard_id, evidence.name, evidence.type,
                                             evidence.data, evidence.sha256)
    await run_in_threadpool(audit.record, "hazard.attach", f"hazard:{hazard_id}",
                            f"attachment {att.id} {att.type} {att.size} bytes")
    return AttachmentOut.of(att, ctx.district.tz)


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the real name as RFC 5987's
    ``filename*`` (UTF-8, percent-encoded), so 整改照片.png arrives as itself, not as ____.png."""
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in name) or "file"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/{hazard_id}/attachments/{attachment_id}", response_class=Response,
            responses=NOT_FOUND | {200: {"content": {"image/jpeg": {}, "image/png": {}, "application/pdf": {}},
                                         "description": "the file as uploaded"}})
def get_attachment(hazard_id: str, attachment_id: str, request: Request, ctx: Ctx, caller: Caller,
                   state: State) -> Response:
    """The attachment's bytes, with its type."""
    with answers():
        get_ledger(request, ctx, state).readable(caller, hazard_id)
    att = state.get_attachment(hazard_id, attachment_id)
    if att is None or att.data is None:
        raise ApiError(404, f"attachment {attachment_id!r} of hazard {hazard_id!r} not found")
    # sandbox: a PDF (or anything) opened in the browser from this origin runs no script and
    # cannot reach the API with the viewer's cookie.
    return Response(att.data, media_type=att.type, headers={
        "Content-Disposition": content_disposition(att.name), "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox"})
