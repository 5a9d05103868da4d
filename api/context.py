"""What the API needs from the running process, handed in by ``service`` (the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from alerting import AlertService
from domain.clock import Clock, now_ms
from domain.district import District
from domain.settings import Settings
from notify import TargetPolicy
from store.influx import InfluxClient
from store.state import StateStore
from supervision import SupervisionService


@dataclass
class ApiContext:
    district: District
    settings: Settings
    admin_token: str
    registry: CollectorRegistry
    # (status, components) for /health: status "ok" | "degraded"; components name → detail dict
    health: Callable[[], tuple[str, dict[str, Any]]]
    state: StateStore | None = None  # alert book, tokens, subscriptions, silences
    influx: InfluxClient | None = None  # history and trend reads
    alerts: AlertService | None = None  # ack, close, SSE broadcaster, latest values
    targets: TargetPolicy | None = None  # where notifications may go; None: from settings
    clock: Clock = now_ms  # the trend window's "now" (tests move it)
    supervision: SupervisionService | None = None  # hazards: listing, moves, overdue chain
    sse_heartbeat_s: float = 15.0  # comment lines on an idle stream keep proxies from closing it
