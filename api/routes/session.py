"""``/api/v1/session``: signing in and out with a name and a password (contract section 9).

One answer (401, the same words) for a wrong name, a wrong password and a disabled account, so
the endpoint does not tell which names exist; the audit trail keeps the real reason for the
admin. Five failures for one name within ten minutes lock that name for fifteen (429 with
``Retry-After``); the lock is per name, so it never touches bearer tokens, the admin's included.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.deps import SESSION_COOKIE, Caller, Ctx, Principal, State, client_ip, get_caller, known_query, record_audit
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, Responses
from api.schemas import ErrorOut
from api.schemas_people import SessionIn, SessionOut

router = APIRouter(prefix="/api/v1/session", tags=["session"], dependencies=[Depends(known_query)])
WRONG = "wrong username or password"
LOCKED: Responses = {429: {"model": ErrorOut, "description": "too many failed sign-ins for this name (Retry-After)"}}


def _out(p: Principal) -> SessionOut:
    return SessionOut(username=p.username, role=p.role.value, department=p.department, sites=sorted(p.sites),
                      csrf_token=p.csrf_token)


@router.post("", response_model=SessionOut, responses=AUTH_RESPONSES | LOCKED | BAD_BODY)
def sign_in(body: SessionIn, request: Request, response: Response, ctx: Ctx, state: State) -> SessionOut:
    """Sign in: sets the HttpOnly session cookie and answers who is signed in with its csrf_token."""
    ip = client_ip(request)
    result = state.sign_in(body.username, body.password, ip)
    if result.user is None:
        record_audit(state, actor=body.username, action="session.sign_in_failed",
                     target=f"user:{body.username}", detail=result.reason, ip=ip)
        if result.retry_after_s is not None:
            raise ApiError(429, f"too many failed sign-ins for {body.username!r}: try again in "
                                f"{result.retry_after_s} s", headers={"Retry-After": str(result.retry_after_s)})
        raise ApiError(401, WRONG, headers={"WWW-Authenticate": "Bearer"})
    token, signed = state.create_session(result.user, ip)
    # Lax: the cookie goes along on top-level navigation only; writes also need the CSRF header.
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    user = result.user
    record_audit(state, actor=user.username, role=user.role, department=user.department,
                 action="session.sign_in", target=f"user:{user.username}", ip=ip)
    return SessionOut(username=user.username, role=user.role,  # type: ignore[arg-type]
                      department=user.department if user.role in ("viewer", "operator") else None,
                      sites=list(user.sites) if user.role == "site" else [], csrf_token=signed.csrf_token)


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
