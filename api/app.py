"""The FastAPI application (placeholder until the API issue lands: health and metrics only)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import generate_latest

from api.context import ApiContext


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="Safewatch", version="0.1.0")
    app.state.ctx = ctx

    @app.get("/health")
    def get_health() -> JSONResponse:
        """Component health: 503 when degraded."""
        status, components = ctx.health()
        return JSONResponse({"status": status, "components": components}, 200 if status == "ok" else 503)

    @app.get("/metrics", response_class=PlainTextResponse)
    def get_metrics() -> PlainTextResponse:
        """Prometheus text exposition."""
        return PlainTextResponse(generate_latest(ctx.registry).decode(), media_type="text/plain; version=0.0.4")

    return app
