"""Dependencies every router shares: the caller, what it may see, the audit hook, the stores.

``Caller`` turns the request into one ``Principal``: a bearer token (the admin token, compared
in constant time, or a department token looked up hashed, with its role and expiry) or else the
``safewatch_session`` cookie (a session row, checked against the database at every request, so a
sign-out or a disabled user counts at once in every process). A cookie-authenticated request
that changes anything must carry ``X-CSRF-Token`` equal to the session's token: browsers send
cookies on cross-site requests by themselves, but never a header a page script cannot read.
A missing or unknown credential is a 401 with ``WWW-Authenticate: Bearer``, as RFC 6750 asks.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext
from api.errors import ApiError
from api.scope import Scope
from domain.alerts import Alert
from domain.clock import now_ms
from domain.durations import parse_duration
from domain.principal import ADMIN_TOKEN_PRINCIPAL, Principal, Role, Via
from store.history import HistoryReader
from store.state import StateStore

__all__ = ["Principal", "Role", "Via"]  # routers import the caller's type from here

log = logging.getLogger(__name__)

SESSION_COOKIE = "safewatch_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_bearer = HTTPBearer(auto_error=False,
                     description="The admin token or a department token (POST /api/v1/tokens)")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                       description="A signed-in person's session (POST /api/v1/session); writes also "
                                   f"need the {CSRF_HEADER} header")


def unauthorized(detail: str) -> ApiError:
    return ApiError(401, detail, headers={"WWW-Authenticate": "Bearer"})


def get_ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_ctx)]


def get_state(ctx: Ctx) -> StateStore:
    if ctx.state is None:
        raise ApiError(503, "the state store is not configured in this process")
    return ctx.state


State = Annotated[StateStore, Depends(get_state)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def session_idle_ms(ctx: ApiContext) -> int:
    """``SAFEWATCH_SESSION_IDLE`` (default 12h) in ms; checked when serve starts, so a bad value here
    falls back to the default rather than locking everyone out."""
    try:
        return int(parse_duration(ctx.settings.session_idle) * 1000)
    except ValueError:
        return 12 * 3_600_000


def _from_token(ctx: ApiContext, token: str) -> Principal:
    if ctx.admin_token and hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        return ADMIN_TOKEN_PRINCIPAL
    info = None if ctx.state is None else ctx.state.token_info(token)
    if info is None:
        raise unauthorized("invalid or revoked token")
    if info.expires_ms is not None and info.expires_ms <= now_ms():
        raise unauthorized("token expired")
    if info.department not in ctx.district.departments:
        raise unauthorized(f"the token's department {info.department!r} is no longer in the district config")
    return Principal(Via.TOKEN, Role(info.role), department=info.department)


def _from_session(ctx: ApiContext, cookie: str, touch: bool = True) -> Principal:
    signed = None if ctx.state is None else ctx.state.session_for(cookie, session_idle_ms(ctx), touch=touch)
    if signed is None:
        raise unauthorized("not signed in: the session expired, was signed out or its user disabled")
    user = signed.user
    role = Role(user.role)
    department = user.department if role in (Role.VIEWER, Role.OPERATOR) else None
    if department is not None and department not in ctx.district.departments:
        raise unauthorized(f"user {user.username!r}: department {department!r} is no longer in the district config")
    sites = frozenset(user.sites) if role is Role.SITE else frozenset()
    return Principal(Via.SESSION, role, username=user.username, department=department, sites=sites,
                     session_id=signed.session_id, csrf_token=signed.csrf_token)


def _from_cookie(request: Request, ctx: ApiContext, cookie: str) -> Principal:
    principal = _from_session(ctx, cookie)
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), (principal.csrf_token or "").encode()):
            raise ApiError(403, f"header {CSRF_HEADER}: missing or not this session's csrf_token "
                                "(a signed-in write must send it)")
    return principal


@dataclass(frozen=True, slots=True)
class Credential:
    """What a request presented: a bearer token and/or the session cookie's value."""

    token: str | None
    cookie: str | None


async def get_credential(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
                         cookie: Annotated[str | None, Depends(_cookie)]) -> Credential:
    return Credential(credentials.credentials if credentials is not None and credentials.credentials else None,
                      cookie or None)


def get_caller(request: Request, ctx: Ctx, credential: Annotated[Credential, Depends(get_credential)]) -> Principal:
    """The one place a request becomes a Principal (a bearer token wins over a cookie)."""
    if credential.token is not None:
        return _from_token(ctx, credential.token)
    if credential.cookie is not None:
        return _from_cookie(request, ctx, credential.cookie)
    raise unauthorized("missing bearer token (send Authorization: Bearer TOKEN) or session cookie "
                       "(POST /api/v1/session)")


def current_principal(ctx: ApiContext, credential: Credential) -> Principal | None:
    """The principal ``credential`` stands for now, or None once it no longer counts (signed out,
    user disabled or given a new password, token revoked or expired): for a request that lasts,
    the SSE stream. Unlike a request, this does not count as use of the session, so an open
    stream alone does not keep a session from idling out."""
    try:
        if credential.token is not None:
            return _from_token(ctx, credential.token)
        if credential.cookie is not None:
            return _from_session(ctx, credential.cookie, touch=False)
    except ApiError:
        return None
    return None


Credentials = Annotated[Credential, Depends(get_credential)]
Caller = Annotated[Principal, Depends(get_caller)]


def known_query(request: Request) -> None:
    """422 for a query parameter the operation does not declare: a misspelt filter
    (``?severity=red`` for ``?severity_at_least=red``) must not silently widen an answer."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return
    operation = request.app.openapi()["paths"].get(path, {}).get(request.method.lower(), {})
    declared = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"}
    for name in request.query_params:
        if name not in declared:
            expected = f"expected one of {', '.join(sorted(declared))}" if declared else "it takes none"
            raise ApiError(422, f"query {name}: unknown parameter ({expected})")


# Router-level checks of every /api/v1 operation, in order: who is calling, then what they ask.
# (``get_caller`` runs once per request: the handler's ``Caller`` reuses this result.)
API_CHECKS = [Depends(get_caller), Depends(known_query)]


def who(caller: Principal) -> str:
    """The caller in a refusal: ``role operator (commerce)``, ``role site (alice)``."""
    name = caller.department if caller.username is None else caller.username
    return f"role {caller.role.value}" + (f" ({name})" if name else "")


def get_admin(caller: Caller) -> Principal:
    if not caller.is_admin:
        raise ApiError(403, f"admin only: {who(caller)} may not do this")
    return caller


Admin = Annotated[Principal, Depends(get_admin)]


def get_operator(caller: Caller) -> Principal:
    if not caller.can_write:
        raise ApiError(403, f"operators and admins only: {who(caller)} may not do this")
    return caller


Operator = Annotated[Principal, Depends(get_operator)]


def get_staff(caller: Caller) -> Principal:
    """Anyone but a site user (subscriptions and silences are the supervisors' business)."""
    if caller.role is Role.SITE:
        raise ApiError(403, f"{who(caller)} may not do this: a site user sees only its sites' alerts "
                            "and hazards")
    return caller


Staff = Annotated[Principal, Depends(get_staff)]
STAFF_CHECKS = [*API_CHECKS, Depends(get_staff)]


def get_scope(request: Request) -> Scope:
    scope: Scope = request.app.state.scope
    return scope


SiteScope = Annotated[Scope, Depends(get_scope)]


def get_history(request: Request) -> HistoryReader:
    history: HistoryReader | None = request.app.state.history
    if history is None:
        raise ApiError(503, "InfluxDB is not configured in this process")
    return history


History = Annotated[HistoryReader, Depends(get_history)]


def get_history_if_any(request: Request) -> HistoryReader | None:
    history: HistoryReader | None = request.app.state.history
    return history


MaybeHistory = Annotated[HistoryReader | None, Depends(get_history_if_any)]


def sees_site(caller: Principal, scope: Scope, site_id: str) -> bool:
    """The registry's site is the caller's to see: any for the admin, a site user's own, or one
    some alert of which could be routed to the caller's department."""
    if caller.role is Role.SITE:
        return caller.sees_site(site_id) and scope.sees_site(None, site_id)
    if caller.is_admin:
        return scope.sees_site(None, site_id)
    return caller.department is not None and scope.sees_site(caller.department, site_id)


def visible_site(caller: Principal, scope: Scope, site_id: str) -> None:
    """404 unless the site exists and the caller may see it (the same answer for both)."""
    if not sees_site(caller, scope, site_id):
        raise ApiError(404, f"site {site_id!r} not found")


def sees_alert(caller: Principal, alert: Alert) -> bool:
    """Site users see their sites' alerts; everyone else what is routed to its department."""
    if caller.role is Role.SITE:
        return caller.sees_site(alert.site)
    return caller.sees(alert.departments)


def acting_department(caller: Principal, ctx: ApiContext, requested: str | None) -> str:
    """The department a write acts for: the caller's own, or the one the admin names."""
    if caller.department is not None:
        if requested is not None and requested != caller.department:
            raise ApiError(403, f"department {caller.department!r} may not act for {requested!r}")
        return caller.department
    if not caller.is_admin:
        raise ApiError(403, f"{who(caller)} acts for no department")
    if requested is None:
        raise ApiError(422, "body department: the admin must name the department this is for")
    if requested not in ctx.district.departments:
        raise ApiError(422, f"body department: unknown department {requested!r} "
                            f"(expected one of {', '.join(ctx.district.departments)})")
    return requested


@dataclass(frozen=True, slots=True)
class AuditLog:
    """The audit hook of one request: ``record(action, target, detail)`` writes an entry with the
    caller's actor, role and department and the client address."""

    state: StateStore
    caller: Principal
    ip: str

    def record(self, action: str, target: str, detail: str = "") -> None:
        record_audit(self.state, actor=self.caller.actor, role=self.caller.role.value,
                     department=self.caller.department, action=action, target=target, detail=detail, ip=self.ip)


def record_audit(state: StateStore, *, actor: str, action: str, target: str, detail: str = "",
                 role: str | None = None, department: str | None = None, ip: str = "") -> None:
    """Writes one audit entry. The change it describes has already been committed, so a failure
    here is logged loudly rather than turned into an error answer for a change that happened."""
    try:
        state.record_audit(actor=actor, role=role, department=department, action=action, target=target,
                           detail=detail, ip=ip)
    except Exception:
        log.exception("audit entry lost: actor=%s action=%s target=%s", actor, action, target)


def get_audit(request: Request, caller: Caller, state: State) -> AuditLog:
    return AuditLog(state, caller, client_ip(request))


Audit = Annotated[AuditLog, Depends(get_audit)]
