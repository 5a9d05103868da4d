"""Alert latency: reading published → its ``fired`` webhook received, measured beside the load.

A reading past the probe rule's level is published, each from a new device of the probe
site (so each fires an alert of its own), and the time until its signed ``fired`` webhook
arrives is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from service.bench.district import Probe
from transport.mqtt import MqttClient


class LatencyProbe:
    SECRET = b"bench-secret"

    def __init__(self, mqtt_url: str, api_base: str, token: str, district: str, probe: Probe) -> None:
        self.api_base, self.token, self.district, self.probe = api_base, token, district, probe
        self.sent: dict[str, float] = {}
        self.received: dict[str, float] = {}
        self.bad_signatures = 0
        me = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.monotonic()
                expected = "sha256=" + hmac.new(me.SECRET, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(expected, self.headers.get("X-Safewatch-Signature", "")):
                    me.bad_signatures += 1
                event = json.loads(body)
                if event.get("type") == "fired":
                    me.received.setdefault(event["alert"]["device"], at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self._mqtt = MqttClient(mqtt_url, "bench-probe")

    def start(self) -> None:
        threading.Thread(target=self._http.serve_forever, name="webhook-receiver", daemon=True).start()
        url = f"http://127.0.0.1:{self._http.server_address[1]}/hook"
        r = httpx.post(f"{self.api_base}/api/v1/subscriptions", timeout=10,
                       headers={"Authorization": f"Bearer {self.token}"},
                       json={"channel": "webhook", "url": url, "secret": self.SECRET.decode(),
                             "min_severity": "blue", "department": self.probe.department,
                             "sites": [self.probe.site]})
        r.raise_for_status()
        self._mqtt.connect(10)

    def run(self, duration: float, probes: int = 60) -> None:
        p = self.probe
        for n in range(probes):
            device = f"probe{n}"
            body = json.dumps({"ts": int(time.time() * 1000), "values": {p.metric: p.value}})
            self.sent[device] = time.monotonic()
            self._mqtt.publish(f"{self.district}/{p.family}/{p.site}/{device}/telemetry", body, qos=1)
            time.sleep(duration / probes)
        deadline = time.monotonic() + 30
        while len(self.received) < len(self.sent) and time.monotonic() < deadline:
            time.sleep(0.1)

    def summary(self) -> dict[str, float | int | None]:
        ms = sorted((self.received[d] - t) * 1000 for d, t in self.sent.items() if d in self.received)
        if not ms:
            return {"p50": None, "p99": None, "samples": 0, "sent": len(self.sent)}
        return {"p50": round(ms[len(ms) // 2], 1), "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
                "samples": len(ms), "sent": len(self.sent), "bad_signatures": self.bad_signatures}

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._mqtt.close()
