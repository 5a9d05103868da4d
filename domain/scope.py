"""Which sites a department may look at, derived once from the district's routing.

An alert is visible to the departments it was routed to (the book records them). A site has
no such record, so a department sees a site when some alert of that site *could* reach it:
a routing entry whose match the site can satisfy (family, site, street, a metric or rule of
its family; severity and kind are satisfiable by some alert) names the department, directly
or as the site's ``sector``/``street``, or an escalation step names it. The comprehensive
bureau reached by ``{severity_at_least: orange}`` thus sees every site; a sector department
only its own sites.

The API answers reads by it (``api.deps.sees_site``) and the ledger files inspections by it
(``supervision.access.may_file_at``), so it lives in the domain both use.
"""

from __future__ import annotations

from collections.abc import Mapping

from domain.config import RouteMatch, Site
from domain.district import District
from domain.families import FAMILIES


def site_departments(district: District, site: Site) -> frozenset[str]:
    """The departments some alert of ``site`` could be routed to: those that see it."""
    out: set[str] = set()
    for route in district.routing:
        if _could_match(district, route.match, site):
            out.update(_resolve(district, n, site) for n in route.notify)
    for step in district.escalation:
        out.update(_resolve(district, n, site) for n in step.notify)
    return frozenset(out)


def _resolve(district: District, name: str, site: Site) -> str:
    if name == "sector":
        return site.sector
    if name == "street":
        return district.street_office(site)
    return name


def _could_match(district: District, m: RouteMatch, site: Site) -> bool:
    if m.family not in (None, site.family) or m.site not in (None, site.id):
        return False
    if m.street not in (None, site.street):
        return False
    if m.metric is not None and m.metric not in FAMILIES[site.family]:
        return False
    if m.rule is not None:
        rule = district.rules.get(m.rule)
        if rule is None or rule.family not in ("*", site.family):
            return False
    return True


class Scope:
    """``site_departments`` of every site of the district, worked out once."""

    def __init__(self, district: District) -> None:
        self.district = district
        self._by_site: Mapping[str, frozenset[str]] = {
            sid: site_departments(district, site) for sid, site in district.sites.items()
        }

    def departments_of_site(self, site_id: str) -> frozenset[str]:
        return self._by_site.get(site_id, frozenset())

    def sees_site(self, department: str | None, site_id: str) -> bool:
        """``department`` None is the admin, who sees every site of the registry."""
        if site_id not in self._by_site:
            return False
        return department is None or department in self._by_site[site_id]
