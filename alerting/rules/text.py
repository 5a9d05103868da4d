"""Human wording for alert messages: metric labels, numbers, units, durations.

Messages reach supervisors on phones and in webhooks, so they read like a sentence
("CO 62 ppm rising 4.1 ppm/min, red (200) expected in 34 min"), not like a rule dump.
"""

from __future__ import annotations

from domain.families import FAMILIES

_UNIT_SUFFIXES = ("_ppm", "_pct", "_lel", "_kpa", "_cm", "_c")
_CHEMICALS = {"co": "CO", "o2": "O2", "ch4": "CH4", "h2s": "H2S", "co2": "CO2"}
_UNITLESS = {"ratio", "bool"}


def metric_label(metric: str) -> str:
    """``co_ppm`` → ``CO``, ``tank_pressure_kpa`` → ``tank pressure``: the unit is said by the number."""
    base = metric
    for suffix in _UNIT_SUFFIXES:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return _CHEMICALS.get(base, base.replace("_", " "))


def metric_unit(family: str, metric: str) -> str:
    spec = FAMILIES.get(family, {}).get(metric)
    if spec is None or spec.unit in _UNITLESS:
        return ""
    return spec.unit


def num(value: float) -> str:
    """Four significant digits without exponent noise: 62, 4.1, 0.8333, 12500."""
    if abs(value) >= 10_000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def quantity(value: float, unit: str) -> str:
    return f"{num(value)} {unit}" if unit else num(value)


def rate(slope_per_min: float, unit: str) -> str:
    return f"{num(slope_per_min)} {unit}/min" if unit else f"{num(slope_per_min)}/min"


def duration(ms: float) -> str:
    """Rounded for reading: ``45 s``, ``34 min``, ``2 h 5 min``."""
    seconds = max(0, round(ms / 1000))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
