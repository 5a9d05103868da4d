"""Who may see and move a hazard (contract sections 9 and 10).

Viewers read what is routed to their department; operators also file inspections and move the
hazards routed to them; a site user sees its own sites' hazards, self-reports for them and files
their plans, progress, evidence and submissions; only the site's sector department (or the
admin) verifies. The admin does everything.
"""

from __future__ import annotations

from domain.hazards import Hazard
from domain.principal import Principal, Role
from supervision.errors import HazardForbidden


def sees(who: Principal, h: Hazard) -> bool:
    if who.role is Role.ADMIN:
        return True
    if who.role is Role.SITE:
        return h.site in who.sites
    return who.department is not None and who.department in h.departments


def check_write(who: Principal, h: Hazard, action: str) -> None:
    """403 naming the caller unless it may ``action`` (plan, progress, attach, submit) ``h``."""
    if who.role is Role.ADMIN:
        return
    if who.role is Role.VIEWER:
        raise HazardForbidden(f"{who.actor} is a viewer: may not {action} hazard {h.id}")
    if not sees(who, h):
        raise HazardForbidden(f"hazard {h.id} is not {who.actor}'s to {action}")


def check_verify(who: Principal, h: Hazard) -> None:
    """Only the site's sector department (an operator of it) or the admin verifies (销账)."""
    if who.role is Role.ADMIN:
        return
    if who.role is Role.OPERATOR and who.department == h.sector:
        return
    raise HazardForbidden(f"only the sector department {h.sector!r} or the admin may verify hazard {h.id} "
                          f"({who.actor} may not)")
