"""One error shape for every failure: ``{"detail": "..."}`` (contract section 5).

FastAPI answers a request it cannot validate with 422 and a list under ``detail``; clients of
this API read ``detail`` as a sentence, so the list moves to ``errors`` and ``detail`` says
in words which parameter is wrong and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from store.influx import InfluxError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by handlers and dependencies; becomes ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "body", "cookie"):
        where, rest = parts[0], parts[1:]
        return f"{where} {'.'.join(rest)}" if rest else where
    return ".".join(parts)


def describe(errors: Sequence[Any]) -> str:
    """``query limit: Input should be less than or equal to 1000; ...``."""
    out = []
    for e in errors:
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(f"{_where(e.get('loc', ()))}: {msg}")
    return "; ".join(out) or "invalid request"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": detail}, exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "ctx" and k != "url"} for e in exc.errors()]
    body = {"detail": describe(errors), "errors": jsonable_encoder(errors)}
    return JSONResponse(body, 422)


async def _influx_error(request: Request, exc: Exception) -> JSONResponse:
    # InfluxDB down or refusing: the request was fine, the answer is just not available now
    return JSONResponse({"detail": f"readings unavailable: {exc}"}, 503, headers={"Retry-After": "5"})


async def _state_down(request: Request, exc: Exception) -> JSONResponse:
    # The state database is away (stopped, unreachable): /health says so too; try again shortly.
    log.warning("%s %s: state database unavailable (%s)", request.method, request.url.path, type(exc).__name__)
    return JSONResponse({"detail": f"state database unavailable ({type(exc).__name__}); try again shortly"}, 503,
                        headers={"Retry-After": "5"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(InfluxError, _influx_error)
    app.add_exception_handler(OperationalError, _state_down)
    app.add_exception_handler(InterfaceError, _state_down)
    app.add_exception_handler(Exception, _unexpected)
