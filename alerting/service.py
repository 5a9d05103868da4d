"""The alerting side of one process (placeholder until the alerting issue lands)."""

from __future__ import annotations

from typing import Any

from domain.district import District
from domain.readings import Batch


class AlertService:
    def __init__(self, district: District, state: Any = None, writer: Any = None, publisher: Any = None,
                 registry: Any = None) -> None:
        self.district = district

    def handle_batch(self, batch: Batch) -> None:
        """The ingest hand-off: evaluate a validated batch (no-op until the engine lands)."""

    def start(self, scheduler: Any = None) -> None:
        """Start background work (sweeps, escalation, delivery)."""

    def stop(self) -> None:
        """Stop background work, delivering what is due."""
