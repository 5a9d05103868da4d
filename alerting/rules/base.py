"""What the engine needs from a compiled rule and from the per-key state it hands out."""

from __future__ import annotations

from typing import Protocol

from domain.alerts import AlertKey, Signal
from domain.severity import Severity


class Tracker(Protocol):
    """The state of one alert key: fed the key's readings in event-time order.

    Most readings change nothing: a quiet threshold stays quiet, a trend's line only moves
    when a point enters or leaves its window. Each tracker therefore says where it is
    *quiet*: a reading with ``lo <= value <= hi`` and ``ts_ms < until`` would return None
    from ``step`` and change no state the engine depends on, so the engine may skip it.
    ``requiet`` recomputes the three after the state changed; the bounds are exact (a
    strict bound is stored as the next float), so skipping never changes a signal.
    """

    key: AlertKey
    lo: float
    hi: float
    until: float

    def step(self, value: float, ts_ms: int) -> Signal | None:
        """Take one reading; a signal when the key starts firing, changes severity or clears.
        Leaves ``lo``, ``hi`` and ``until`` up to date."""
        ...

    def restore(self, severity: Severity) -> None:
        """Resume as firing at ``severity`` (after a restart): no fire signal for it again."""
        ...

    def requiet(self, ts_ms: int | None = None) -> None:
        """Recompute the quiet region after the state was set from outside (``ts_ms``: the time
        of the last reading stepped, None when unknown: then only what holds at any time)."""
        ...


class CompiledRule(Protocol):
    """A threshold or trend rule prepared once at start; hands out one tracker per key."""

    rule_id: str

    def tracker(self, key: AlertKey) -> Tracker: ...
