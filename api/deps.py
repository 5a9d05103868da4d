"""Dependencies every router shares: the caller, the process context, the stores.

``Caller`` resolves the bearer token: the admin token (compared in constant time) or a
department token looked up, hashed, in the state store. A missing or unknown token is a 401
with ``WWW-Authenticate: Bearer``, as RFC 6750 asks.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.context import ApiContext
from api.errors import ApiError
from api.scope import Scope
from store.history import HistoryReader
from store.state import StateStore

ADMIN = "admin"
_bearer = HTTPBearer(auto_error=False,
                     description="The admin token or a department token (POST /api/v1/tokens)")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin (``department`` None) or one department."""

    department: str | None

    @property
    def is_admin(self) -> bool:
        return self.department is None

    @property
    def name(self) -> str:
        """What the book records as ``by``: the department id, or ``admin``."""
        return self.department or ADMIN

    def sees(self, departments: tuple[str, ...] | list[str] | frozenset[str]) -> bool:
        """True for the admin, or when ``departments`` (an alert's routing) include the caller's."""
        return self.department is None or self.department in departments


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


def get_caller(ctx: Ctx, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
               ) -> Principal:
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing bearer token (send Authorization: Bearer TOKEN)")
    token = credentials.credentials
    if ctx.admin_token and hmac.compare_digest(token.encode(), ctx.admin_token.encode()):
        return Principal(None)
    department = None if ctx.state is None else ctx.state.department_for_token(token)
    if department is None:
        raise unauthorized("invalid or revoked token")
    if department not in ctx.district.departments:
        raise unauthorized(f"the token's department {department!r} is no longer in the district config")
    return Principal(department)


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


def get_admin(caller: Caller) -> Principal:
    if not caller.is_admin:
        raise ApiError(403, f"admin only: department {caller.department!r} may not do this")
    return caller


Admin = Annotated[Principal, Depends(get_admin)]


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


def visible_site(caller: Principal, scope: Scope, site_id: str) -> None:
    """404 unless the site exists and the caller may see it (the same answer for both)."""
    if not scope.sees_site(caller.department, site_id):
        raise ApiError(404, f"site {site_id!r} not found")


def acting_department(caller: Principal, ctx: ApiContext, requested: str | None) -> str:
    """The department a write acts for: the caller's own, or the one the admin names."""
    if caller.department is not None:
        if requested is not None and requested != caller.department:
            raise ApiError(403, f"department {caller.department!r} may not act for {requested!r}")
        return caller.department
    if requested is None:
        raise ApiError(422, "body department: the admin must name the department this is for")
    if requested not in ctx.district.departments:
        raise ApiError(422, f"body department: unknown department {requested!r} "
                            f"(expected one of {', '.join(ctx.district.departments)})")
    return requested
