"""The three site families, their metrics, units and physical ranges (contract section 2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str
    low: float
    high: float
    binary: bool = False
    derived: bool = False  # computed by the engine from the site, never accepted from a device

    def accepts(self, value: float) -> bool:
        if self.binary:
            return value == 0.0 or value == 1.0
        return self.low <= value <= self.high


def _m(name: str, unit: str, low: float, high: float) -> MetricSpec:
    return MetricSpec(name, unit, low, high)


def _flag(name: str) -> MetricSpec:
    return MetricSpec(name, "bool", 0.0, 1.0, binary=True)


GAS_STATION: Final = "gas_station"
CROWD_VENUE: Final = "crowd_venue"
UNDERGROUND: Final = "underground"

FAMILIES: Final[dict[str, dict[str, MetricSpec]]] = {
    GAS_STATION: {
        m.name: m
        for m in (
            _m("vapor_lel", "%LEL", 0, 100),
            _m("tank_pressure_kpa", "kPa", -100, 300),
            _m("tank_temp_c", "°C", -50, 90),
            _m("tank_level_pct", "%", 0, 100),
            _flag("leak"),
            _flag("barrier_fault"),
        )
    },
    CROWD_VENUE: {
        m.name: m
        for m in (
            _m("occupancy", "persons", 0, 1_000_000),
            _m("inflow_per_min", "persons/min", 0, 100_000),
            _m("outflow_per_min", "persons/min", 0, 100_000),
            MetricSpec("occupancy_ratio", "ratio", 0, float("inf"), derived=True),
            MetricSpec("density_per_m2", "persons/m²", 0, float("inf"), derived=True),
        )
    },
    UNDERGROUND: {
        m.name: m
        for m in (
            _m("co_ppm", "ppm", 0, 10_000),
            _m("o2_pct", "%", 0, 100),
            _m("ch4_lel", "%LEL", 0, 100),
            _m("h2s_ppm", "ppm", 0, 1_000),
            _m("co2_ppm", "ppm", 0, 100_000),
            _m("water_level_cm", "cm", 0, 2_000),
            _m("temp_c", "°C", -50, 90),
            _m("humidity_pct", "%", 0, 100),
            _flag("smoke"),
            _m("occupancy", "persons", 0, 100_000),
        )
    },
}

FAMILY_NAMES: Final[tuple[str, ...]] = tuple(FAMILIES)


def device_metrics(family: str) -> dict[str, MetricSpec]:
    """The metrics a device of ``family`` may send (derived ones excluded)."""
    return {k: v for k, v in FAMILIES[family].items() if not v.derived}
