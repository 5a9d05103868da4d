"""The FastAPI application: contract section 5, one router per resource under ``api/routes``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api import errors
from api.console import mount_console
from api.context import ApiContext
from api.limits import BodyLimits
from api.routes import (
    alerts,
    audit,
    cluster,
    credit,
    district,
    hazards,
    health,
    history,
    registry,
    reports,
    session,
    silences,
    stream,
    subscriptions,
    tokens,
    trend,
    users,
)
from api.scope import Scope
from store.history import HistoryReader

DESCRIPTION = """\
Alerts, readings and notifications of one district's monitored sites.

Every `/api/v1` call needs `Authorization: Bearer TOKEN`: the admin token, or a department
token from `POST /api/v1/tokens`. A department sees and acts on only what is routed to it.
Times are RFC 3339 with an offset; errors are `{"detail": "..."}`.
"""


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="Safewatch", version="0.1.0", description=DESCRIPTION)
    app.state.ctx = ctx
    app.state.scope = Scope(ctx.district)
    app.state.history = None if ctx.influx is None else HistoryReader(ctx.influx, ctx.district)
    errors.install(app)
    app.add_middleware(BodyLimits)  # 413 for oversized bodies, 4xx for hostile JSON, before any route
    for module in (health, session, users, audit, tokens, registry, district, alerts, history, trend,
                   subscriptions, silences, stream, hazards, reports, credit, cluster):
        _summaries_from_docstrings(module.router)
        app.include_router(module.router)
    mount_console(app)  # last: the console's pages never shadow an API path
    return app


def _summaries_from_docstrings(router: APIRouter) -> None:
    """The handler's one-line docstring is the operation's summary in /docs (not "Get Trend")."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.summary is None and route.endpoint.__doc__:
            route.summary = route.endpoint.__doc__.strip().splitlines()[0].rstrip(".")
