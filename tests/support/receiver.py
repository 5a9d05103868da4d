"""A real HTTP webhook receiver for tests (http.server in a thread): scripted answers, recorded calls.

Not a mock of anything of ours: it is the outside world's receiver. Each path has a script of
status codes (the last one repeats) and an optional delay per request.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # time.monotonic() when it arrived

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    def signed_by(self, secret: str) -> bool:
        want = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-safewatch-signature", ""), want)


@dataclass
class Receiver:
    port: int
    scripts: dict[str, list[int]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path: str, statuses: list[int], delay: float = 0.0) -> str:
        with self.lock:
            self.scripts[path] = list(statuses)
            self.delays[path] = delay
        return self.url(path)

    def _answer(self, path: str) -> tuple[int, float]:
        with self.lock:
            script = self.scripts.get(path, [200])
            status = script.pop(0) if len(script) > 1 else script[0]
            return status, self.delays.get(path, 0.0)

    def received(self, path: str, ok_only: bool = True) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.path == path and (not ok_only or 200 <= c.status < 300)]

    def wait_for(self, path: str, n: int, timeout: float = 15.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received(path)
            if len(got) >= n:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.received(path))} of {n} notifications within {timeout}s; "
                             f"all calls: {[(c.status, c.json.get('type')) for c in self.calls if c.path == path]}")


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            status, delay = rec._answer(self.path)
            if delay:
                time.sleep(delay)
            with rec.lock:
                rec.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status,
                                      time.monotonic()))
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec = Receiver(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
