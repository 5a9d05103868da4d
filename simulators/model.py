"""What every site model shares: a seeded state advanced by simulated time, read per device.

One model per site keeps the site's physics coherent (a delivery moves tank level, pressure
and vapour together; a ventilation cycle moves every gas), and each family splits its
metrics over one or two devices the way real installations do.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar
from zoneinfo import ZoneInfo

from domain.config import Site
from domain.district import District
from domain.families import device_metrics
from simulators.curves import local_minute
from simulators.quiet import SiteLimits, clamp

MAX_STEP_S = 30.0  # longer gaps are integrated in steps, so a late first reading stays plausible


def site_rng(seed: int | None, site_id: str) -> random.Random:
    """One stream per site: adding a site to the config leaves the others' readings unchanged."""
    return random.Random(f"{seed}:{site_id}") if seed is not None else random.Random()


class SiteModel(ABC):
    """A site's simulated state; ``values_at(ts_ms)`` advances it and returns every device metric."""

    family: ClassVar[str]
    devices: ClassVar[Mapping[str, tuple[str, ...]]]  # device id -> the metrics it reports

    def __init__(self, site: Site, district: District, rng: random.Random) -> None:
        self.site = site
        self.tz: ZoneInfo = district.tz
        self.rng = rng
        self.limits = SiteLimits(site, district)
        self._last_ms: int | None = None
        self._cache: tuple[int, dict[str, float]] | None = None

    def values_at(self, ts_ms: int) -> dict[str, float]:
        """All device metrics at ``ts_ms``, physically valid and inside the quiet bands.

        Time never runs backwards for a model: an earlier ``ts_ms`` reads the current state.
        """
        if self._cache is not None and self._cache[0] == ts_ms:
            return dict(self._cache[1])
        if self._last_ms is None:
            self._start(ts_ms)
            self._last_ms = ts_ms
        elif ts_ms > self._last_ms:
            t = self._last_ms
            while t < ts_ms:
                step_ms = min(ts_ms - t, int(MAX_STEP_S * 1000))
                t += step_ms
                self._advance(t, step_ms / 1000.0)
            self._last_ms = ts_ms
        bands = self.limits.at(local_minute(ts_ms, self.tz))
        values = clamp(self._read(ts_ms), bands)
        self._cache = (ts_ms, values)
        return dict(values)

    def noise(self, metric: str, wanted: float) -> float:
        """Gaussian sensor noise for ``metric``, within what the config's trend rules tolerate."""
        return self.rng.gauss(0.0, self.limits.noise(metric, wanted))

    def bands(self, ts_ms: int) -> Mapping[str, tuple[float, float]]:
        return self.limits.at(local_minute(ts_ms, self.tz))

    @abstractmethod
    def _start(self, ts_ms: int) -> None:
        """Set a plausible state for the local time of ``ts_ms``."""

    @abstractmethod
    def _advance(self, ts_ms: int, dt_s: float) -> None:
        """Move the state forward by ``dt_s`` seconds, ending at ``ts_ms``."""

    @abstractmethod
    def _read(self, ts_ms: int) -> dict[str, float]:
        """What the sensors show now (state plus sensor noise), before clamping."""

    @classmethod
    def check_layout(cls) -> None:
        """The devices must cover the family's metrics exactly once (checked by the tests)."""
        listed = [m for metrics in cls.devices.values() for m in metrics]
        expected = set(device_metrics(cls.family))
        if sorted(listed) != sorted(expected):
            raise AssertionError(f"{cls.__name__}: devices cover {sorted(listed)}, family has {sorted(expected)}")


def rounded(values: dict[str, float], digits: Mapping[str, int]) -> dict[str, float]:
    """Round like a real instrument's display (a counter shows whole persons)."""
    return {k: float(round(v, digits.get(k, 2))) for k, v in values.items()}
