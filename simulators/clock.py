"""Simulated time for the device models and scenarios.

The clock can run faster than the wall clock (``--speed``) so that a scenario that takes
twenty simulated minutes plays in two real ones. Ingest rejects readings stamped more than
five minutes in the future, so a fast clock never overtakes the wall clock: it starts in the
past far enough to end at "now", and once it has caught up it simply runs at real speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

DEFAULT_CATCH_UP_S = 600.0  # real seconds of fast running when the run has no fixed duration


class SimClock:
    """Epoch milliseconds of simulated time; never later than the wall clock."""

    def __init__(self, speed: float = 1.0, start_ms: int | None = None, *,
                 wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"--speed {speed}: must be a positive number of simulated seconds per second")
        self.speed = speed
        self._monotonic = monotonic
        self._mono0 = monotonic()
        self._wall0_ms = wall() * 1000.0
        self.start_ms = int(self._wall0_ms if start_ms is None else min(start_ms, self._wall0_ms))

    @classmethod
    def for_run(cls, speed: float, duration_s: float | None, *,
                catch_up_s: float = DEFAULT_CATCH_UP_S) -> SimClock:
        """A clock that runs ``speed`` times faster for the whole run (or ``catch_up_s``), ending at now."""
        real_s = duration_s if duration_s is not None else catch_up_s
        lead_ms = max(0.0, speed - 1.0) * real_s * 1000.0
        return cls(speed, int(time.time() * 1000.0 - lead_ms))

    def _elapsed_s(self) -> float:
        return self._monotonic() - self._mono0

    def now_ms(self) -> int:
        e = self._elapsed_s()
        return int(min(self.start_ms + self.speed * e * 1000.0, self._wall0_ms + e * 1000.0))

    def rate(self) -> float:
        """Simulated seconds per real second right now (1.0 once caught up with the wall clock)."""
        e = self._elapsed_s()
        return self.speed if self.start_ms + self.speed * e * 1000.0 < self._wall0_ms + e * 1000.0 else 1.0

    def real_seconds_until(self, sim_ms: int) -> float:
        """Real seconds until the clock shows ``sim_ms`` (0 if it already has)."""
        ahead_ms = sim_ms - self.now_ms()
        return max(0.0, ahead_ms / 1000.0 / self.rate())
