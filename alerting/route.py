"""Routing (contract section 2, ``routing``): which departments an alert goes to.

Like Alertmanager with ``continue: true`` on every route: the list is walked in order and
every entry whose ``match`` holds adds its ``notify`` departments. ``sector`` and ``street``
are placeholders resolved per site (the site's sector department, its street's office:
条 and 块); the result keeps first-seen order without duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from domain.config import RouteMatch
from domain.district import District
from domain.severity import Severity


class Routable(Protocol):
    """What routing looks at; ``domain.alerts.Alert`` has all of it."""

    @property
    def rule(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def street(self) -> str: ...
    @property
    def severity(self) -> Severity: ...


@dataclass(frozen=True, slots=True)
class _Entry:
    match: RouteMatch
    notify: tuple[str, ...]


class Router:
    """The district's routing list, prepared once; ``departments_for`` per alert."""

    def __init__(self, district: District) -> None:
        self._district = district
        self._entries = tuple(_Entry(r.match, tuple(r.notify)) for r in district.routing)

    def departments_for(self, alert: Routable) -> tuple[str, ...]:
        """Every matching entry's departments, placeholders resolved, de-duplicated in order."""
        street = self.street_of(alert)
        names: list[str] = []
        for entry in self._entries:
            if _matches(entry.match, alert, street):
                names.extend(entry.notify)
        return self.resolve(names, alert.site)

    def resolve(self, names: Iterable[str], site_id: str) -> tuple[str, ...]:
        """Department ids for ``names``: ``sector`` → the site's sector, ``street`` → its street's
        office; a placeholder the site cannot resolve (a site no longer configured) is skipped."""
        site = self._district.sites.get(site_id)
        out: dict[str, None] = {}
        for name in names:
            if name == "sector":
                if site is not None:
                    out[site.sector] = None
            elif name == "street":
                office = self._office(site.street) if site is not None else None
                if office is not None:
                    out[office] = None
            else:
                out[name] = None
        return tuple(out)

    def street_of(self, alert: Routable) -> str:
        """The site's street from the config; the alert's recorded one if the site is gone."""
        site = self._district.sites.get(alert.site)
        return site.street if site is not None else alert.street

    def _office(self, street_id: str) -> str | None:
        street = self._district.streets.get(street_id)
        return None if street is None else street.office


def _matches(m: RouteMatch, a: Routable, street: str) -> bool:
    return (
        (m.family is None or m.family == a.family)
        and (m.metric is None or m.metric == a.metric)
        and (m.rule is None or m.rule == a.rule)
        and (m.kind is None or m.kind == a.kind)
        and (m.site is None or m.site == a.site)
        and (m.street is None or m.street == street)
        and (m.severity_at_least is None or a.severity >= m.severity_at_least)
    )
