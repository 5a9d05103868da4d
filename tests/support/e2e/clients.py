"""The outside world's side of the contract: devices on MQTT, a supervisor's HTTP client, alert topics."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.stack import StackInfo
from tests.support.helpers import wait_until
from transport.mqtt import Message, MqttClient


def now_ms() -> int:
    return int(time.time() * 1000)


def wait_equal(get: Callable[[], object], want: object, timeout: float, what: str) -> None:
    """Polls get() until it equals want; the failure shows the last value seen."""
    last: list[object] = [None]

    def check() -> bool:
        last[0] = get()
        return last[0] == want

    try:
        wait_until(check, timeout, what, interval=0.1)
    except AssertionError as err:
        raise AssertionError(f"{err}: want {want!r}, last got {last[0]!r}") from None


class Devices:
    """Publishes telemetry and status as field devices would (QoS 1, waiting for the broker's PUBACK)."""

    def __init__(self, stack: StackInfo, district: str) -> None:
        self.district = district
        self._client = MqttClient(stack.mqtt_url, f"{district}-devices-{uuid.uuid4().hex[:6]}")
        self._client.connect(10.0)

    def topic(self, family: str, site: str, device: str, kind: str = "telemetry") -> str:
        return f"{self.district}/{family}/{site}/{device}/{kind}"

    def raw(self, topic: str, payload: bytes | str) -> None:
        self._client.publish(topic, payload, qos=1, wait=True, timeout=10.0)

    def send(self, family: str, site: str, device: str, values: dict[str, Any], ts: int | None = None) -> int:
        """One telemetry object stamped `ts` (default: now); returns the stamp."""
        stamp = now_ms() if ts is None else ts
        self.raw(self.topic(family, site, device), json.dumps({"ts": stamp, "values": values}))
        return stamp

    def status(self, family: str, site: str, device: str, state: str) -> None:
        self.raw(self.topic(family, site, device, "status"), json.dumps({"state": state}))

    def close(self) -> None:
        self._client.close()


class AlertTopics:
    """Everything published on ``{district}/alerts/#`` from the moment of construction."""

    def __init__(self, stack: StackInfo, district: str) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._client = MqttClient(stack.mqtt_url, f"{district}-listener-{uuid.uuid4().hex[:6]}")
        self._client.subscribe([f"{district}/alerts/#"], 1, self._on_message)
        self._client.connect(10.0)

    def _on_message(self, msg: Message) -> None:
        with self._lock:
            self._messages.append(msg)

    def received(self, alert_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(topic, body) of the alert's events, first copy of each (event id, topic), in arrival order."""
        out: list[tuple[str, dict[str, Any]]] = []
        seen: set[tuple[str, str]] = set()
        with self._lock:
            messages = list(self._messages)
        for m in messages:
            body = json.loads(m.payload)
            key = (body.get("event_id", ""), m.topic)
            if body.get("alert", {}).get("id") == alert_id and key not in seen:
                seen.add(key)
                out.append((m.topic, body))
        return out

    def close(self) -> None:
        self._client.close()


@dataclass
class Api:
    """The HTTP API as a supervisor's system calls it: every call names its bearer token."""

    base_url: str
    admin_token: str

    def request(self, method: str, path: str, token: str | None = "admin", **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {self.admin_token if token == 'admin' else token}"
        return httpx.request(method, self.base_url + path, headers=headers, timeout=15.0, **kwargs)

    def json(self, method: str, path: str, token: str | None = "admin", expect: int = 200, **kwargs: Any) -> Any:
        resp = self.request(method, path, token, **kwargs)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        return resp.json()

    def alerts(self, token: str = "admin", **params: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.json("GET", "/api/v1/alerts", token, params=params)
        return found

    def alert(self, alert_id: str, token: str = "admin") -> dict[str, Any]:
        found: dict[str, Any] = self.json("GET", f"/api/v1/alerts/{alert_id}", token)
        return found

    def only_alert(self, site: str, rule: str) -> dict[str, Any] | None:
        """The one alert of `rule` at `site`, or None; fails if there are several."""
        found = [a for a in self.alerts(site=site) if a["rule"] == rule]
        assert len(found) <= 1, f"several {rule} alerts at {site}: {[a['id'] for a in found]}"
        return found[0] if found else None

    def wait_alert(self, site: str, rule: str, ready: Callable[[dict[str, Any]], bool], what: str,
                   timeout: float = 15.0) -> dict[str, Any]:
        """Polls the book until the (site, rule) alert satisfies `ready`; returns it with its events."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            listed = self.only_alert(site, rule)
            if listed is None:
                return False
            found[:] = [self.alert(listed["id"])]
            return ready(found[0])

        wait_until(check, timeout, f"{rule} alert at {site}: {what}", interval=0.2)
        return found[0]

    def token_for(self, department: str) -> str:
        body = self.json("POST", "/api/v1/tokens", expect=201, json={"department": department})
        assert body["department"] == department
        token: str = body["token"]
        return token

    def subscribe(self, department: str, url: str, secret: str) -> str:
        body = self.json("POST", "/api/v1/subscriptions", expect=201, json={
            "channel": "webhook", "url": url, "secret": secret, "min_severity": "blue",
            "families": [], "streets": [], "sites": [], "department": department})
        sub_id: str = body["id"]
        return sub_id


class EventStream:
    """``GET /api/v1/stream`` read in a thread: the `data:` bodies, in arrival order.

    Plain http.client, so that close() can shut the socket down under the blocked reader.
    """

    def __init__(self, api: Api, token: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status: int | None = None
        self.open = threading.Event()
        url = urlsplit(api.base_url)
        self._conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10.0)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        self._thread = threading.Thread(target=self._read, args=(headers,), name="sse-reader", daemon=True)
        self._thread.start()

    def _read(self, headers: dict[str, str]) -> None:
        try:
            self._conn.request("GET", "/api/v1/stream", headers=headers)
            resp = self._conn.getresponse()
            self.status = resp.status
            self.open.set()
            if self._conn.sock is not None:
                self._conn.sock.settimeout(None)  # events may be minutes apart; close() ends the wait
            while line := resp.readline():
                if line.startswith(b"data:"):
                    self.bodies.append(json.loads(line[5:]))
        except (OSError, http.client.HTTPException, ValueError):
            pass  # closed by close() or by serve; the test looks at what arrived
        finally:
            self.open.set()

    def close(self) -> None:
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # the reader sees the end of the stream
        self._thread.join(5)
        self._conn.close()  # only now: http.client is not safe to close under a reading thread
