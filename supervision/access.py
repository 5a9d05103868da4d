"""Who may see and move a hazard (contract sections 9 and 10).

Viewers read what is routed to their department; operators also file inspections and move the
hazards routed to them; a site user sees its own sites' hazards, self-reports for them and files
their plans, progress, evidence and submissions; only the site's sector department (or the
admin) verifies. The admin does everything.
"""

from __future__ import annotations

from domain.district import District
from domain.hazards import Hazard
from domain.principal import Principal, Role
from domain.scope import site_departments
from supervision.errors import HazardForbidden


def sees(who: Principal, h: Hazard) -> bool:
    if who.role is Role.ADMIN:
        return True
    if who.role is Role.SITE:
        return h.site in who.sites
    return who.department is not None and who.department in h.departments


def may_file_at(who: Principal, district: District, site_id: str) -> bool:
    """Whether ``who`` may file a hazard at the site at all: the admin anywhere, a site user at
    its own sites, a department only at sites it sees (``GET /sites/{id}`` answers 200). A filed
    hazard weighs on the site's credit score, so a department may not file at sites of others'."""
    if who.role is Role.ADMIN:
        return True
    if who.role is Role.SITE:
        return site_id in who.sites
    site = district.sites.get(site_id)
    return site is not None and who.department is not None and who.department in site_departments(district, site)


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
