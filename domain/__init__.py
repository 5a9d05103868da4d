"""Safewatch's shared vocabulary: severities, families, the district config, readings, settings.

Imports nothing else of ours; every other package may import it.
"""

from domain.config import ConfigError
from domain.district import District, load_district, parse_district
from domain.readings import Batch, DeviceStatus, Reading
from domain.severity import Severity

__all__ = [
    "Batch",
    "ConfigError",
    "DeviceStatus",
    "District",
    "Reading",
    "Severity",
    "load_district",
    "parse_district",
]
