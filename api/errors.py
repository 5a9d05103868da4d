"""One error shape for every failure: ``{"detail": "..."}`` (contract section 5).

FastAPI answers a request it cannot validate with 422 and a list under ``detail``; clients of
this API read ``detail`` as a sentence, so the list moves to ``errors`` and ``detail`` says
in words which parameter is wrong and why.

Whatever the caller sent, the answer must encode: JSON responses refuse NaN and infinities, and
UTF-8 cannot carry a lone surrogate, both of which a validation error may quote from the
request. So every text of an error answer is made encodable, and an error's ``input`` is kept
only when it is a short scalar (the whole body it often is may be large, or hold a password).
"""

from __future__ import annotations

import logging
import math
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


MAX_INPUT_CHARS = 200
SECRET_FIELDS = frozenset({"password", "secret", "token"})


def safe_text(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX`` escapes: encodable as UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean(value: Any) -> Any:
    """A validation error's part as JSON can carry it: text encodable, numbers finite."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf"
    if isinstance(value, dict):
        return {safe_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _input(value: Any) -> tuple[bool, Any]:
    """(keep, value) for an error's ``input``: short scalars only."""
    if value is None or isinstance(value, bool | int | float):
        return True, _clean(value)
    if isinstance(value, str):
        text = safe_text(value)
        return True, text if len(text) <= MAX_INPUT_CHARS else text[:MAX_INPUT_CHARS] + "…"
    return False, None


def clean_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors without ``ctx`` and ``url``, with a short scalar ``input`` at most, encodable."""
    out = []
    for e in errors:
        item = {k: _clean(v) for k, v in e.items() if k not in ("ctx", "url", "input")}
        # a password, secret or token is never quoted back, not even a short one (a number, say)
        if "input" in e and not SECRET_FIELDS.intersection(str(p) for p in e.get("loc", ())):
            keep, value = _input(e["input"])
            if keep:
                item["input"] = value
        out.append(item)
    return out


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
    return JSONResponse({"detail": safe_text(exc.detail)}, exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return JSONResponse({"detail": safe_text(detail)}, exc.status_code, headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = clean_errors(exc.errors())
    body = {"detail": describe(errors), "errors": _clean(jsonable_encoder(errors))}
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
