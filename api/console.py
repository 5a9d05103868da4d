"""The supervisors' console (contract section 11): static files from ``console/``, served at ``/``.

The console is a client of the public API only; this module just hands out its files. Every
client-side route answers the same ``index.html`` (the app routes in the browser), files live
under ``/console/``, and nothing here shadows ``/api``, ``/health``, ``/metrics``, ``/docs`` or
``/openapi.json``. Files are read once and kept gzip-compressed in memory (the whole console is a
few hundred kilobytes), answered with an ETag so a reload costs a 304. The Content-Security-Policy
forbids fetching from any other host, which is what an isolated district network needs anyway.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
# Client-side routes of the app (console/js/app.js ROUTES); each answers index.html.
PAGES = ("/", "/alerts", "/alerts/{item}", "/sites", "/sites/{item}", "/hazards", "/hazards/{item}", "/map",
         "/reports", "/credit", "/credit/{item}", "/subscriptions", "/silences", "/users", "/audit")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
_TYPES = {".js": "text/javascript; charset=utf-8", ".json": "application/json; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml",
          ".wav": "audio/wav"}


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    gz: bytes
    etag: str
    media_type: str


class ConsoleFiles:
    """The files of ``root``, read and compressed again only when one changes on disk (one stat per
    request), so an edited console shows at the next reload without restarting serve."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._cache: dict[str, tuple[tuple[int, int], _File]] = {}

    def get(self, rel: str) -> _File | None:
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None  # a ../ escape or a missing file: both are simply not found
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        hit = self._cache.get(rel)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        body = path.read_bytes()
        media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        f = _File(body, gzip.compress(body, 9, mtime=0), f'"{hashlib.sha256(body).hexdigest()[:20]}"', media)
        self._cache[rel] = (stamp, f)
        return f

    def answer(self, request: Request, rel: str) -> Response:
        f = self.get(rel)
        if f is None:
            return Response(b'{"detail": "not found"}', 404, media_type="application/json")
        headers = {"ETag": f.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding",
                   "X-Content-Type-Options": "nosniff"}
        if f.media_type.startswith("text/html"):
            headers |= {"Content-Security-Policy": CSP, "Referrer-Policy": "no-referrer"}
        if request.headers.get("if-none-match") == f.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(f.gz, media_type=f.media_type, headers=headers | {"Content-Encoding": "gzip"})
        return Response(f.body, media_type=f.media_type, headers=headers)


def mount_console(app: FastAPI, root: Path = CONSOLE_DIR) -> None:
    files = ConsoleFiles(root)

    async def page(request: Request) -> Response:
        return files.answer(request, "index.html")

    async def asset(request: Request, path: str) -> Response:
        return files.answer(request, path)

    for route in PAGES:
        app.add_api_route(route, page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/console/{path:path}", asset, methods=["GET"], include_in_schema=False)
