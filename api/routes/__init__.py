"""One router per resource of the HTTP API (contract section 5), and the error answers they document."""

from __future__ import annotations

from typing import Any

from api.schemas import ErrorOut, ValidationErrorOut

Responses = dict[int | str, dict[str, Any]]


def _error(status: int, description: str) -> Responses:
    return {status: {"model": ErrorOut, "description": description}}


AUTH_RESPONSES: Responses = _error(401, "missing, invalid or revoked token") | {
    422: {"model": ValidationErrorOut, "description": "a parameter or the body is invalid"}}
NOT_FOUND = _error(404, "not found, or not visible to the caller")
FORBIDDEN = _error(403, "not the caller's to change")
CONFLICT = _error(409, "the alert's state does not allow this")
BAD_REQUEST = _error(400, "a request the store refuses (range, window, metric)")
BAD_BODY = _error(400, "a body that is not UTF-8 JSON")
UNAVAILABLE = _error(503, "InfluxDB or the alert service is unavailable right now (Retry-After)")
