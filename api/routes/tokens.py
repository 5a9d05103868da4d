"""Department tokens: issued and revoked by the admin, stored hashed, each with a role
(viewer or operator) and an optional expiry."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import API_CHECKS, Admin, Audit, Ctx, State
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, FORBIDDEN, NOT_FOUND
from api.schemas import RevokedOut, RevokeIn
from api.schemas_people import TokenIn, TokenOut
from domain.clock import now_ms
from store.state.records import dt_to_ms

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


def _known(ctx: Ctx, department: str) -> str:
    if department not in ctx.district.departments:
        raise ApiError(422, f"department {department!r} is not in the district config "
                            f"(expected one of {', '.join(ctx.district.departments)})")
    return department


@router.post("", status_code=201, response_model=TokenOut, responses=BAD_BODY)
def create_token(body: TokenIn, ctx: Ctx, admin: Admin, state: State, audit: Audit) -> TokenOut:
    """Issue a bearer token for a department (admin only); it is shown this once."""
    department = _known(ctx, body.department)
    expires_ms = None if body.expires_at is None else dt_to_ms(body.expires_at)
    if expires_ms is not None and expires_ms <= now_ms():
        raise ApiError(422, f"body expires_at: {body.expires_at.isoformat()} has passed"  # type: ignore[union-attr]
                            " (a token must expire in the future)")
    token = state.issue_token(department, body.role, expires_ms)
    expires = None if expires_ms is None else datetime.fromtimestamp(expires_ms / 1000, UTC).astimezone(ctx.district.tz)
    audit.record("token.create", f"token:{department}",
                 f"role {body.role}" + ("" if expires is None else f", expires {expires.isoformat()}"))
    return TokenOut(token=token, department=department, role=body.role, expires_at=expires)


@router.post("/revoke", response_model=RevokedOut, responses=NOT_FOUND | BAD_BODY)
def revoke_token(body: RevokeIn, admin: Admin, state: State, audit: Audit) -> RevokedOut:
    """Revoke one token (admin only); it answers 401 from then on."""
    info = state.token_info(body.token)
    if not state.revoke_token(body.token):
        raise ApiError(404, "token not found (unknown or already revoked)")
    audit.record("token.revoke", f"token:{info.department if info else '?'}", "one token")
    return RevokedOut(revoked=1)


@router.delete("/{department}", response_model=RevokedOut)
def revoke_department_tokens(department: str, ctx: Ctx, admin: Admin, state: State, audit: Audit) -> RevokedOut:
    """Revoke every token of a department (admin only)."""
    department = _known(ctx, department)
    revoked = state.revoke_department_tokens(department)
    audit.record("token.revoke", f"token:{department}", f"all {revoked} tokens of the department")
    return RevokedOut(department=department, revoked=revoked)
