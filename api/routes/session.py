"""``/api/v1/session``: signing in and out with a name and a password (contract section 9).

One answer (401, the same words) for a wrong name, a wrong password and a disabled account, so
the endpoint does not tell which names exist; the audit trail keeps the real reason for the
admin. Five failures for one name within ten minutes lock that name for fifteen (429 with
``Retry-After``); the lock is per name, so it never touches bearer tokens, the admin's included.

Signing in is an async handler: the password check runs on the hashing threads of
``store.state.people.HASHING`` and the database steps briefly on the shared thread pool, so a
flood of sign-ins never holds the threads every other request needs. When more than
``WAITING_PER_SLOT`` times the hashing slots are already waiting, a sign-in is refused at once
(429, ``Retry-After``) rather than queued for ever longer; such a refusal checked nothing and is
not audited (each one would be a free audit row for anyone).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import SESSION_COOKIE, Caller, Ctx, Principal, State, client_ip, get_caller, known_query, record_audit
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, Responses
from api.schemas import ErrorOut
from api.schemas_people import SessionIn, SessionOut
from store.state import StateStore
from store.state.people import HASHING, SIGN_IN_FAILED, SignInAttempt, SignInResult, password_matches

router = APIRouter(prefix="/api/v1/session", tags=["session"], dependencies=[Depends(known_query)])
WRONG = "wrong username or password"
LOCKED: Responses = {429: {"model": ErrorOut, "description": "too many failed sign-ins for this name, or too many "
                                                            "sign-ins at once (Retry-After)"}}
WAITING_PER_SLOT = 4
BUSY_RETRY_S = 2


def _out(p: Principal) -> SessionOut:
    return SessionOut(username=p.username, role=p.role.value, department=p.department, sites=sorted(p.sites),
                      csrf_token=p.csrf_token)


def _cookie_secure(request: Request, ctx: Ctx) -> bool:
    """``SAFEWATCH_COOKIE_SECURE``: ``auto`` follows the scheme the server sees (behind a TLS
    proxy, only what uvicorn's proxy headers make of it); ``true``/``false`` say so outright."""
    setting = ctx.settings.cookie_secure
    return request.url.scheme == "https" if setting == "auto" else setting == "true"


def _finish(state: StateStore, attempt: SignInAttempt, password: str, matched: bool, ip: str
            ) -> tuple[SignInResult, str | None, str | None]:
    """After the password check (on a pool thread): the result, and for a success the new
    session's cookie value and csrf_token; every outcome is audited."""
    result = state.finish_sign_in(attempt, password, matched)
    user = result.user
    if user is None:
        record_audit(state, actor=attempt.username, action=SIGN_IN_FAILED, target=f"user:{attempt.username}",
                     detail=result.reason, ip=ip)
        return result, None, None
    token, signed = state.create_session(user, ip)
    record_audit(state, actor=user.username, role=user.role, department=user.department,
                 action="session.sign_in", target=f"user:{user.username}", ip=ip)
    return result, token, signed.csrf_token


@router.post("", response_model=SessionOut, responses=AUTH_RESPONSES | LOCKED | BAD_BODY)
async def sign_in(body: SessionIn, request: Request, response: Response, ctx: Ctx, state: State) -> SessionOut:
    """Sign in: sets the HttpOnly session cookie and answers who is signed in with its csrf_token."""
    ip = client_ip(request)
    if not HASHING.reserve(WAITING_PER_SLOT * HASHING.slots):
        raise ApiError(429, f"too many sign-ins at once: try again in {BUSY_RETRY_S} s",
                       headers={"Retry-After": str(BUSY_RETRY_S)})
    try:
        attempt = await run_in_threadpool(state.begin_sign_in, body.username, ip)
        if attempt.retry_after_s is not None:
            await run_in_threadpool(state.record_locked_attempt, body.username, attempt.locked_since_ms, ip)
            raise ApiError(429, f"too many failed sign-ins for {body.username!r}: try again in "
                                f"{attempt.retry_after_s} s", headers={"Retry-After": str(attempt.retry_after_s)})
        matched = await HASHING.run_async(password_matches, attempt.check_against, body.password)
    finally:
        HASHING.release()
    result, token, csrf = await run_in_threadpool(_finish, state, attempt, body.password, matched, ip)
    user = result.user
    if user is None or token is None or csrf is None:
        raise ApiError(401, WRONG, headers={"WWW-Authenticate": "Bearer"})
    # Lax: the cookie goes along on top-level navigation only; writes also need the CSRF header.
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=_cookie_secure(request, ctx))
    return SessionOut(username=user.username, role=user.role,  # type: ignore[arg-type]
                      department=user.department if user.role in ("viewer", "operator") else None,
                      sites=list(user.sites) if user.role == "site" else [], csrf_token=csrf)


@router.get("", response_model=SessionOut, responses=AUTH_RESPONSES)
def who_am_i(caller: Caller) -> SessionOut:
    """Who is signed in (for a bearer token: its role and department, no username or csrf_token)."""
    return _out(caller)


@router.delete("", status_code=204, response_class=Response, responses=AUTH_RESPONSES | BAD_BODY,
               dependencies=[Depends(get_caller)])
def sign_out(request: Request, caller: Caller, state: State) -> Response:
    """Sign out: the session ends at once, in every process."""
    if caller.session_id is None:
        raise ApiError(400, "signed in by a bearer token: there is no session to end "
                            "(the admin revokes tokens: POST /api/v1/tokens/revoke)")
    state.end_session(caller.session_id)
    record_audit(state, actor=caller.actor, role=caller.role.value, department=caller.department,
                 action="session.sign_out", target=f"user:{caller.actor}", ip=client_ip(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response
