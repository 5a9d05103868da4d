"""Department tokens: issued and revoked by the admin, stored hashed by the state store."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import API_CHECKS, Admin, Ctx, State
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, FORBIDDEN, NOT_FOUND
from api.schemas import RevokedOut, RevokeIn, TokenIn, TokenOut

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


def _known(ctx: Ctx, department: str) -> str:
    if department not in ctx.district.departments:
        raise ApiError(422, f"department {department!r} is not in the district config "
                            f"(expected one of {', '.join(ctx.district.departments)})")
    return department


@router.post("", status_code=201, response_model=TokenOut, responses=BAD_BODY)
def create_token(body: TokenIn, ctx: Ctx, admin: Admin, state: State) -> TokenOut:
    """Issue a bearer token for a department (admin only); it is shown this once."""
    department = _known(ctx, body.department)
    return TokenOut(token=state.create_token(department), department=department)


@router.post("/revoke", response_model=RevokedOut, responses=NOT_FOUND | BAD_BODY)
def revoke_token(body: RevokeIn, admin: Admin, state: State) -> RevokedOut:
    """Revoke one token (admin only); it answers 401 from then on."""
    if not state.revoke_token(body.token):
        raise ApiError(404, "token not found (unknown or already revoked)")
    return RevokedOut(revoked=1)


@router.delete("/{department}", response_model=RevokedOut)
def revoke_department_tokens(department: str, ctx: Ctx, admin: Admin, state: State) -> RevokedOut:
    """Revoke every token of a department (admin only)."""
    department = _known(ctx, department)
    return RevokedOut(department=department, revoked=state.revoke_department_tokens(department))
