"""The one registry of derived metrics: what a crowd venue's fill and density are made of.

``occupancy_ratio`` = occupancy / capacity and ``density_per_m2`` = occupancy / area_m2: a
device metric over a constant of the site. They are never accepted from a device nor stored;
the engine judges them on each occupancy reading and derives them among a site's latest values
(``DerivedMetrics``), history and the API scale the stored occupancy (``scale``: dividing by a
positive constant commutes with every aggregate offered), the simulators and the benchmark
find their source (``source_of``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from domain.families import FAMILIES


class SiteConstants(Protocol):
    """The part of ``domain.config.Site`` a derived metric reads (read-only, so Literal-typed
    families and the pydantic model both fit)."""

    @property
    def id(self) -> str: ...

    @property
    def family(self) -> str: ...

    @property
    def capacity(self) -> int | None: ...

    @property
    def area_m2(self) -> float | None: ...


class DerivedMetric(NamedTuple):
    source: str  # the device metric it is computed from
    attribute: str  # the site attribute it divides by
    name: str

    def divisor(self, site: SiteConstants) -> float | None:
        value = getattr(site, self.attribute, None)
        return float(value) if value else None


DERIVED: Mapping[str, DerivedMetric] = {m.name: m for m in (
    DerivedMetric("occupancy", "capacity", "occupancy_ratio"),
    DerivedMetric("occupancy", "area_m2", "density_per_m2"),
)}

# Every metric the families mark derived is defined here, and nothing else.
_MARKED = {name for metrics in FAMILIES.values() for name, spec in metrics.items() if spec.derived}
if set(DERIVED) != _MARKED:
    raise RuntimeError(f"domain.families marks {sorted(_MARKED)} derived, domain.derived defines {sorted(DERIVED)}")


def source_of(metric: str) -> str:
    """The device metric ``metric`` comes from (itself when it is not derived)."""
    d = DERIVED.get(metric)
    return metric if d is None else d.source


def scale(site: SiteConstants, metric: str) -> float | None:
    """Source units per unit of ``metric`` at ``site`` (1 for a device metric); None when the
    site lacks the constant to derive it."""
    d = DERIVED.get(metric)
    return 1.0 if d is None else d.divisor(site)


class DerivedMetrics:
    """Per site, the derived metrics of its family it has the constants for."""

    def __init__(self, sites: Mapping[str, SiteConstants]) -> None:
        self._divisors: dict[str, dict[str, tuple[tuple[str, float], ...]]] = {}
        for site in sites.values():
            by_source: dict[str, list[tuple[str, float]]] = {}
            for name in FAMILIES[site.family]:
                d = DERIVED.get(name)
                divisor = None if d is None else d.divisor(site)
                if d is not None and divisor:
                    by_source.setdefault(d.source, []).append((name, divisor))
            if by_source:
                self._divisors[site.id] = {src: tuple(pairs) for src, pairs in by_source.items()}

    def of_site(self, site: str) -> tuple[tuple[str, str, float], ...]:
        """(source, derived metric, divisor) for each derived metric ``site`` has: what the
        engine keeps per device, so a reading costs no lookup by site."""
        return tuple((source, name, divisor) for source, pairs in self._divisors.get(site, {}).items()
                     for name, divisor in pairs)

    def derive_latest(self, site: str, latest: Mapping[str, tuple[float, int, str]]
                      ) -> dict[str, tuple[float, int, str]]:
        """metric → (value, time ms, device) for the derived metrics of a site's latest values."""
        out: dict[str, tuple[float, int, str]] = {}
        for source, pairs in self._divisors.get(site, {}).items():
            if source in latest:
                value, t, device = latest[source]
                for name, divisor in pairs:
                    out[name] = (value / divisor, t, device)
        return out
