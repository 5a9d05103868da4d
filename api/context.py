"""What the API needs from the running process, handed in by ``service`` (the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from domain.district import District
from domain.settings import Settings


@dataclass
class ApiContext:
    district: District
    settings: Settings
    admin_token: str
    registry: CollectorRegistry
    # (status, components) for /health: status "ok" | "degraded"; components name → detail dict
    health: Callable[[], tuple[str, dict[str, Any]]]
    state: Any = None  # store.state.StateStore (alert book, tokens, subscriptions, silences)
    influx: Any = None  # store.influx.InfluxClient (history and trend reads)
    alerts: Any = None  # alerting.service.AlertService (ack, close, SSE broadcaster, latest values)
