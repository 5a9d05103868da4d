"""Helpers for tests against the real Mosquitto and InfluxDB of the `stack` fixture.

InfluxDB is spoken to directly over its v1 HTTP API, so a test checks what an
analyst would see, independent of the project's own store code.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from service.stack import StackInfo


def influx_query(stack: StackInfo, db: str, q: str, *, epoch: str | None = "ms") -> dict[str, Any]:
    """Runs InfluxQL; returns the decoded body. Raises on an HTTP error or a statement error."""
    params = {"db": db, "q": q} | ({"epoch": epoch} if epoch else {})
    # POST, because InfluxDB 1.x refuses CREATE/DROP over GET.
    resp = httpx.post(f"{stack.influx_url}/query", data=params, timeout=10.0)
    resp.raise_for_status()
    body: dict[str, Any] = resp.json()
    errors = [r["error"] for r in body.get("results", []) if "error" in r]
    if errors:
        raise AssertionError(f"InfluxQL {q!r} on db {db!r} failed: {errors}")
    return body


def influx_rows(stack: StackInfo, db: str, q: str) -> list[dict[str, Any]]:
    """Runs a SELECT; returns one dict per row with its series' tags and `_measurement` merged in."""
    rows: list[dict[str, Any]] = []
    for result in influx_query(stack, db, q)["results"]:
        for series in result.get("series", []):
            extra = {"_measurement": series["name"], **series.get("tags", {})}
            columns = series["columns"]
            rows.extend(extra | dict(zip(columns, values, strict=True)) for values in series["values"])
    return rows


def influx_write(stack: StackInfo, db: str, lines: Iterable[str], *, precision: str = "ms") -> None:
    resp = httpx.post(f"{stack.influx_url}/write", params={"db": db, "precision": precision},
                      content="\n".join(lines).encode(), timeout=10.0)
    if resp.status_code != 204:
        raise AssertionError(f"write to db {db!r} answered {resp.status_code}: {resp.text}")


def create_database(stack: StackInfo, db: str) -> None:
    influx_query(stack, db, f'CREATE DATABASE "{db}"')


def influx_ping(stack: StackInfo) -> bool:
    try:
        return httpx.get(f"{stack.influx_url}/ping", timeout=2.0).status_code == 204
    except httpx.HTTPError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.05) -> None:
    """Polls predicate until it is true; fails the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s")
        time.sleep(interval)


def cli_publish(stack: StackInfo, topic: str, payload: bytes | str, *, qos: int = 1,
                retain: bool = False) -> None:
    """Publishes one message with the `mosquitto_pub` binary (independent of our transport code)."""
    data = payload.encode() if isinstance(payload, str) else payload
    argv = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(stack.mqtt_port), "-q", str(qos), "-t", topic, "-s"]
    subprocess.run([*argv, "-r"] if retain else argv, input=data, check=True, timeout=30, capture_output=True)


def cli_subscribe(stack: StackInfo, topic: str, *, count: int, client_id: str | None = None,
                  timeout: float = 10.0, qos: int = 1) -> list[bytes]:
    """Receives `count` messages with `mosquitto_sub`; with client_id, as a persistent QoS session.

    count=0 only subscribes and disconnects, which registers the persistent session.
    """
    argv = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(stack.mqtt_port), "-q", str(qos), "-t", topic,
            "-N", "-W", str(max(1, round(timeout)))]
    if client_id:
        argv += ["-c", "-i", client_id]
    # Each payload is followed by a NUL (-N drops the newline, -F adds the separator we choose).
    argv += ["-E"] if count == 0 else ["-C", str(count), "-F", "%p\\0"]
    proc = subprocess.run(argv, capture_output=True, timeout=timeout + 10)
    messages = proc.stdout.split(b"\0")[:-1] if count else []
    if len(messages) < count:
        raise AssertionError(f"mosquitto_sub on {topic!r} got {len(messages)} of {count} messages "
                             f"(exit {proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return messages
