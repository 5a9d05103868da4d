"""``/health`` and ``/metrics``: unauthenticated, for load balancers and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import Ctx
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut,
            responses={503: {"model": HealthOut, "description": "degraded"}})
def get_health(ctx: Ctx) -> JSONResponse:
    """Component health (MQTT, InfluxDB, state database); 503 when degraded."""
    status, components = ctx.health()
    body = HealthOut(status="ok" if status == "ok" else "degraded", components=components)
    return JSONResponse(body.model_dump(mode="json"), 200 if body.status == "ok" else 503)


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
def get_metrics(ctx: Ctx) -> PlainTextResponse:
    """Prometheus metrics: readings, spool depth, alerts by state, notification failures."""
    return PlainTextResponse(generate_latest(ctx.registry).decode(), media_type=CONTENT_TYPE_LATEST)
