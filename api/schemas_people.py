"""Bodies of the people endpoints (contract section 9): sessions, users, tokens with a role, audit.

Passwords are plain ``str`` fields checked by the handlers, not by ``Field(min_length=...)``:
a failed pydantic check echoes the input in the 422 body, and a password must never be echoed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from api.schemas import StrictIn, Time

RoleName = Literal["viewer", "operator", "admin", "site"]
TokenRole = Literal["viewer", "operator"]
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _not_a_number(v: Any) -> Any:
    """Pydantic would take ``1700000000`` (or ``-1e-146``) as epoch seconds; the API speaks RFC 3339."""
    if isinstance(v, int | float) or (isinstance(v, str) and _NUMBER.match(v)):
        raise ValueError(f"expected an RFC 3339 time with an offset (2026-01-01T08:00:00+08:00), not {v!r}")
    return v


Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]


class TokenIn(StrictIn):
    department: str = Field(min_length=1, max_length=64)
    role: TokenRole = "operator"
    expires_at: Rfc3339 | None = Field(default=None, description="RFC 3339; none: never expires")


class TokenOut(BaseModel):
    token: str
    department: str
    role: TokenRole = "operator"
    expires_at: Time | None = None


class SessionIn(StrictIn):
    username: str = Field(min_length=1, max_length=128)
    password: str


class SessionOut(BaseModel):
    """Who is signed in; ``username`` and ``csrf_token`` are null for a bearer token."""

    username: str | None
    role: RoleName
    department: str | None
    sites: list[str]
    csrf_token: str | None


class UserIn(StrictIn):
    username: str = Field(min_length=1, max_length=64)
    role: RoleName
    department: str | None = Field(default=None, max_length=64, description="needed for viewer and operator")
    sites: list[str] = Field(default=[], max_length=1000, description="needed for site")
    password: str = Field(description="at least 10 characters; stored only as an argon2id hash")


class UserPatch(StrictIn):
    role: RoleName | None = None
    department: str | None = Field(default=None, max_length=64)
    sites: list[str] | None = Field(default=None, max_length=1000)
    disabled: bool | None = None
    password: str | None = None


class UserOut(BaseModel):
    username: str
    role: RoleName
    department: str | None
    sites: list[str]
    disabled: bool
    created_at: Time
    updated_at: Time


class AuditOut(BaseModel):
    at: Time
    actor: str
    role: str | None
    department: str | None
    action: str
    target: str
    detail: str
    ip: str
