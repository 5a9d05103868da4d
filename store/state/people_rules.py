"""What makes an account valid: names, roles, passwords, and the department or sites a role needs."""

from __future__ import annotations

import re
from collections.abc import Collection

ROLES = ("viewer", "operator", "admin", "site")
TOKEN_ROLES = ("viewer", "operator")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 takes any length; a cap keeps one request from costing much more
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def check_password(password: str) -> None:
    """Raises ValueError naming the field (never the value) for a password that is too short."""
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters are needed (got {len(password)})")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password: at most {MAX_PASSWORD} characters")


def check_username(username: str) -> None:
    if not USERNAME.match(username):
        raise ValueError(f"username={username!r}: 1 to 64 letters, digits or _.@- (starting with "
                         "a letter or digit)")


def check_account(role: str, department: str | None, sites: tuple[str, ...] | list[str],
                  departments: Collection[str], site_ids: Collection[str]) -> tuple[str | None, tuple[str, ...]]:
    """The (department, sites) an account of ``role`` keeps, checked against the district's ids:
    viewers and operators need a known department and no sites, site users known sites and no
    department, admins neither. Raises ValueError naming the field and the value."""
    if role not in ROLES:
        raise ValueError(f"role={role!r}: expected one of {', '.join(ROLES)}")
    if role in ("viewer", "operator"):
        if department is None:
            raise ValueError(f"department: a {role} needs one (expected one of {', '.join(departments)})")
        if department not in departments:
            raise ValueError(f"department={department!r}: not in the district config "
                             f"(expected one of {', '.join(departments)})")
    elif department is not None:
        raise ValueError(f"department={department!r}: a{'n' if role == 'admin' else ''} {role} user has none")
    if role == "site":
        if not sites:
            raise ValueError("sites: a site user needs at least one site id")
        unknown = [s for s in sites if s not in site_ids]
        if unknown:
            raise ValueError(f"sites: {unknown[0]!r} is not a site of the district config")
    elif sites:
        raise ValueError(f"sites: only a site user has sites (role is {role!r})")
    return department, tuple(dict.fromkeys(sites))
