"""What the engine needs from a compiled rule and from the per-key state it hands out."""

from __future__ import annotations

from typing import Protocol

from domain.alerts import AlertKey, Signal
from domain.severity import Severity


class Tracker(Protocol):
    """The state of one alert key: fed the key's readings in event-time order."""

    key: AlertKey
    # The engine skips ``step`` when ``value * sign <= idle`` (a step that would do nothing).
    sign: float
    idle: float

    def step(self, value: float, ts_ms: int) -> Signal | None:
        """Take one reading; a signal when the key starts firing, changes severity or clears."""
        ...

    def restore(self, severity: Severity) -> None:
        """Resume as firing at ``severity`` (after a restart): no fire signal for it again."""
        ...


class CompiledRule(Protocol):
    """A threshold or trend rule prepared once at start; hands out one tracker per key."""

    rule_id: str

    def tracker(self, key: AlertKey) -> Tracker: ...
