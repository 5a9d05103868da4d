"""A webhook receiver that records every request and can fail the first attempts on purpose."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lowercase names
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def signature_ok(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-safewatch-signature", ""), expected)


class WebhookReceiver:
    """Listens on 127.0.0.1; ``fail_first[path] = n`` answers 500 to the first n POSTs to path, and
    ``hold_first[path] = s`` keeps the first POST to path waiting s seconds before it answers (a slow
    receiver, so that a test can kill the sender mid-request)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._seen: Counter[str] = Counter()
        self.fail_first: dict[str, int] = {}
        self.hold_first: dict[str, float] = {}
        self.holding = threading.Event()  # set while a held request waits
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver._seen[self.path] += 1
                    attempt = receiver._seen[self.path]
                    hold = receiver.hold_first.get(self.path, 0.0) if attempt == 1 else 0.0
                if hold:
                    receiver.holding.set()
                    time.sleep(hold)
                    receiver.holding.clear()
                with receiver._lock:
                    status = 500 if attempt <= receiver.fail_first.get(self.path, 0) else 200
                    receiver._deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                         body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test output is no place for an access log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def deliveries(self, path: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self._deliveries if path is None or d.path == path]

    def events(self, path: str, alert_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies the receiver accepted (200) at `path`, first delivery of each event id, in arrival order."""
        out: list[dict[str, Any]] = []
        ids: set[str] = set()
        for d in self.deliveries(path):
            if d.status != 200:
                continue
            body = d.json
            if body.get("event_id") in ids or (alert_id and body.get("alert", {}).get("id") != alert_id):
                continue
            ids.add(body["event_id"])
            out.append(body)
        return out

    def types(self, path: str, alert_id: str) -> list[str]:
        return [e["type"] for e in self.events(path, alert_id)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
