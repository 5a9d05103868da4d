"""``/api/v1/users``: accounts of people (admin only). Passwords go in, never out."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from api.deps import API_CHECKS, Admin, Audit, Ctx, State
from api.errors import ApiError
from api.routes import AUTH_RESPONSES, BAD_BODY, CONFLICT, FORBIDDEN, NOT_FOUND
from api.schemas_people import UserIn, UserOut, UserPatch
from store.state.people import User, UserExists
from store.state.people_rules import check_account, check_password, check_username

router = APIRouter(prefix="/api/v1/users", tags=["users"], dependencies=API_CHECKS,
                   responses=AUTH_RESPONSES | FORBIDDEN)


def _out(u: User, ctx: Ctx) -> UserOut:
    tz = ctx.district.tz
    return UserOut(username=u.username, role=u.role, department=u.department,  # type: ignore[arg-type]
                   sites=list(u.sites), disabled=u.disabled,
                   created_at=datetime.fromtimestamp(u.created_ms / 1000, UTC).astimezone(tz),
                   updated_at=datetime.fromtimestamp(u.updated_ms / 1000, UTC).astimezone(tz))


def _account(ctx: Ctx, role: str, department: str | None, sites: list[str] | tuple[str, ...]
             ) -> tuple[str | None, tuple[str, ...]]:
    try:
        return check_account(role, department, sites, ctx.district.departments, ctx.district.sites)
    except ValueError as err:
        raise ApiError(422, f"body {err}") from None


def _password(password: str) -> None:
    try:
        check_password(password)
    except ValueError as err:
        raise ApiError(422, f"body {err}") from None


@router.post("", status_code=201, response_model=UserOut, responses=BAD_BODY | CONFLICT)
def create_user(body: UserIn, ctx: Ctx, admin: Admin, state: State, audit: Audit) -> UserOut:
    """Create an account (admin only); the password is stored only as an argon2id hash."""
    try:
        check_username(body.username)
    except ValueError as err:
        raise ApiError(422, f"body {err}") from None
    department, sites = _account(ctx, body.role, body.department, body.sites)
    _password(body.password)
    try:
        user = state.create_user(username=body.username, role=body.role, password=body.password,
                                 department=department, sites=sites)
    except UserExists as err:
        raise ApiError(409, str(err)) from None
    audit.record("user.create", f"user:{user.username}",
                 f"role {user.role}, department {user.department or '-'}, sites {','.join(user.sites) or '-'}")
    return _out(user, ctx)


@router.get("", response_model=list[UserOut])
def list_users(ctx: Ctx, admin: Admin, state: State) -> list[UserOut]:
    """Every account, by name (admin only)."""
    return [_out(u, ctx) for u in state.list_users()]


@router.get("/{username}", response_model=UserOut, responses=NOT_FOUND)
def get_user(username: str, ctx: Ctx, admin: Admin, state: State) -> UserOut:
    """One account (admin only)."""
    user = state.get_user(username)
    if user is None:
        raise ApiError(404, f"user {username!r} not found")
    return _out(user, ctx)


@router.patch("/{username}", response_model=UserOut, responses=NOT_FOUND | BAD_BODY)
def update_user(username: str, body: UserPatch, ctx: Ctx, admin: Admin, state: State, audit: Audit) -> UserOut:
    """Change an account's role, department, sites, password or disable it (admin only); disabling
    it or a new password ends its sessions at once."""
    user = state.get_user(username)
    if user is None:
        raise ApiError(404, f"user {username!r} not found")
    given = body.model_fields_set
    role = body.role if body.role is not None else user.role
    # A role change drops what the new role does not have, unless the body says otherwise.
    keeps = role == user.role
    department = body.department if "department" in given else (user.department if keeps else None)
    sites = body.sites if body.sites is not None else (list(user.sites) if keeps else [])
    if role in ("viewer", "operator") and department is None and user.role in ("viewer", "operator"):
        department = user.department
    department, site_ids = _account(ctx, role, department, sites)
    if body.password is not None:
        _password(body.password)
    changed = state.update_user(username, role=role, department=department, sites=site_ids,
                                disabled=body.disabled, password=body.password, set_department=True)
    if changed is None:
        raise ApiError(404, f"user {username!r} not found")
    what = [f"role {user.role}→{changed.role}" if changed.role != user.role else "",
            f"department {user.department or '-'}→{changed.department or '-'}"
            if changed.department != user.department else "",
            f"sites {','.join(changed.sites) or '-'}" if changed.sites != user.sites else "",
            ("disabled" if changed.disabled else "enabled") if changed.disabled != user.disabled else "",
            "password changed" if body.password is not None else ""]
    audit.record("user.update", f"user:{username}", "; ".join(w for w in what if w) or "no change")
    return _out(changed, ctx)
