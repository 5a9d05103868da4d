"""Request bodies the API accepts at all, checked before any route runs (an ASGI middleware).

- Size: 1 MiB for JSON and every other body; for ``multipart/form-data`` (hazard attachments)
  the file limit of 10 MiB plus 64 KiB for the multipart framing around the file (boundaries,
  part headers, the file name), so a file of exactly 10 MiB still fits; the route itself holds
  the file to 10 MiB. A declared ``Content-Length`` over the limit is refused without reading
  the body; a chunked body is counted as it arrives. Both answer 413.
- JSON bodies: nested deeper than ``MAX_DEPTH`` (no request of this API needs more than a few
  levels; deep nesting otherwise exhausts the parser's recursion) → 422; not UTF-8 → 400; a
  string holding a control character other than tab and newline (a carriage return would let
  a note forge an e-mail or HTTP header line downstream, a NUL truncates it in C libraries)
  → 422 naming the field. Anything else orjson refuses → 422 naming orjson's reason (422 as
  FastAPI answered malformed JSON before, and as the contract has invalid bodies answer): syntax
  errors, and what Python's ``json`` (FastAPI's parser) would take and fail on later with a
  500: ``NaN``/``Infinity``, a number past a double (``1e999``), a lone surrogate escape
  (``"\\ud800"``, which no UTF-8 response can carry). A leading UTF-8 BOM is tolerated, as
  FastAPI tolerates it.

Every refusal is ``{"detail": "..."}`` like the rest of the API (contract section 5).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB
JSON_LIMIT = 1 * MiB
FILE_LIMIT = 10 * MiB  # one attachment (contract section 10: "at most 10 MB")
MULTIPART_SLACK = 64 * KiB  # boundaries and part headers around the file
UPLOAD_LIMIT = FILE_LIMIT + MULTIPART_SLACK
MAX_DEPTH = 32
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _mb(n: int) -> str:
    return f"{n / MiB:g} MiB"


def _limit_text(limit: int, upload: bool) -> str:
    """The limit as a person reads it: an upload's is the file's plus the framing."""
    if upload and limit > MULTIPART_SLACK:
        return f"{_mb(limit - MULTIPART_SLACK)} (the file) plus {MULTIPART_SLACK // KiB} KiB of multipart framing"
    return _mb(limit)


def _walk(doc: Any) -> str | None:
    """Why a parsed JSON body is refused (too deep, a control character), or None. Iterative."""
    stack: list[tuple[Any, str, int]] = [(doc, "body", 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"JSON body nested deeper than {MAX_DEPTH} levels (at {where})"
        if isinstance(node, dict):
            for k, v in node.items():
                if m := _CONTROL.search(k):
                    return f"{where}: a key holds the control character U+{ord(m[0]):04X}"
                stack.append((v, f"{where}.{k}", depth + 1))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))
        elif isinstance(node, str) and (m := _CONTROL.search(node)):
            return (f"{where}: control character U+{ord(m[0]):04X} not allowed "
                    "(text may hold tabs and newlines, not carriage returns or other control characters)")
    return None


def json_problem(body: bytes) -> tuple[int, str] | None:
    """(status, detail) for a JSON body this API refuses before parsing it properly, or None."""
    try:
        doc = orjson.loads(body.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as err:
        if "depth" in str(err).lower() or "recursion" in str(err).lower():
            return 422, f"JSON body nested too deeply (more than {MAX_DEPTH} levels)"
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as uerr:
            return 400, f"request body is not valid UTF-8 (byte 0x{body[uerr.start]:02x} at offset {uerr.start})"
        # orjson's message names the reason and the position, never the input itself.
        return 422, f"request body is not valid JSON ({err})"
    problem = _walk(doc)
    return None if problem is None else (422, problem)


class BodyLimits:
    """ASGI middleware: refuse oversized and hostile bodies; pass everything else through unchanged."""

    def __init__(self, app: App, json_limit: int = JSON_LIMIT, upload_limit: int = UPLOAD_LIMIT) -> None:
        self.app = app
        self.json_limit = json_limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is None and "transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body (GET, the SSE stream, ...)
            return
        ctype = headers.get("content-type", "")
        upload = ctype.lower().startswith("multipart/form-data")
        limit = self.upload_limit if upload else self.json_limit
        kind = "an upload (multipart/form-data)" if upload else "a request body"
        if declared is not None:
            if not declared.strip().isdigit():
                await _refuse(scope, receive, send, 400, f"Content-Length {declared!r} is not a number of bytes")
                return
            if int(declared) > limit:
                await _refuse(scope, receive, send, 413,
                              f"{kind} may be at most {_limit_text(limit, upload)}; "
                              f"this one declares {int(declared)} bytes")
                return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nothing to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > limit:
                await _refuse(scope, receive, send, 413,
                              f"{kind} may be at most {_limit_text(limit, upload)}; this one is larger")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and _is_json(ctype) and (problem := json_problem(body)) is not None:
            await _refuse(scope, receive, send, *problem)
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the body read above, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status, headers={"Connection": "close"})(scope, receive, send)
