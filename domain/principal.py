"""Who acts: a signed-in person or a bearer token, with what role, for which department or sites.

Every API router asks ``api.deps`` for one ``Principal`` and decides with it what the caller may
see and do; the alert book and hazard events record ``Principal.actor`` as ``by``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"      # reads what is routed to its department
    OPERATOR = "operator"  # also acknowledges, closes, files and moves hazards, subscriptions, silences
    ADMIN = "admin"        # everything in the district
    SITE = "site"          # a person at an enterprise: its own sites' alerts and hazards only


class Via(StrEnum):
    ADMIN_TOKEN = "admin_token"
    TOKEN = "token"        # a department token
    SESSION = "session"    # a signed-in person (cookie)


@dataclass(frozen=True, slots=True)
class Principal:
    """``department`` is None for admins and site users; ``sites`` is empty except for site users."""

    via: Via
    role: Role
    username: str | None = None        # the person, for Via.SESSION
    department: str | None = None
    sites: frozenset[str] = frozenset()
    session_id: str | None = None      # for Via.SESSION: the session row (sign-out, CSRF)
    csrf_token: str | None = field(default=None, repr=False)  # for Via.SESSION: what writes must send

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def actor(self) -> str:
        """What the book and the audit trail record as ``by``/``actor``: the username,
        ``token:{department}`` for a department token, ``admin`` for the admin token."""
        if self.username is not None:
            return self.username
        if self.via is Via.TOKEN and self.department is not None:
            return f"token:{self.department}"
        return "admin"

    @property
    def can_write(self) -> bool:
        """Operators and admins change alerts, hazards, subscriptions and silences; site users only
        their own hazards (checked where that happens); viewers nothing."""
        return self.role in (Role.OPERATOR, Role.ADMIN)

    def sees(self, departments: tuple[str, ...] | list[str] | frozenset[str]) -> bool:
        """True for the admin, or when ``departments`` (an alert's or hazard's routing) include the
        caller's department. Site users are scoped by site, not by department: see ``sees_site``."""
        if self.role is Role.ADMIN:
            return True
        return self.department is not None and self.department in departments

    def sees_site(self, site: str) -> bool:
        """For site users: whether ``site`` is one of theirs."""
        return self.role is Role.SITE and site in self.sites


ADMIN_TOKEN_PRINCIPAL = Principal(Via.ADMIN_TOKEN, Role.ADMIN)
