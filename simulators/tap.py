"""A listener on the broker: keeps what arrives on some topic filters (the demo's alert feed, tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import TracebackType

from transport.mqtt import Message, MqttClient


class Tap:
    """Subscribes on ``connect()``; ``messages()`` returns what arrived, ``take()`` only what is new."""

    def __init__(self, url: str, filters: Sequence[str], *, client_id: str | None = None,
                 on_message: Callable[[Message], None] | None = None) -> None:
        self._client = MqttClient(url, client_id or f"safewatch-tap-{uuid.uuid4().hex[:10]}")
        self._filters = list(filters)
        self._seen: list[Message] = []
        self._taken = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._callback = on_message

    def connect(self, timeout: float = 10.0) -> Tap:
        self._client.subscribe(self._filters, 1, self._keep)
        self._client.connect(timeout)
        return self

    def _keep(self, msg: Message) -> None:
        with self._arrived:
            self._seen.append(msg)
            self._arrived.notify_all()
        if self._callback is not None:
            self._callback(msg)

    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._seen)

    def take(self) -> list[Message]:
        """Messages that arrived since the last ``take()``."""
        with self._lock:
            new, self._taken = self._seen[self._taken:], len(self._seen)
            return new

    def wait_for(self, done: Callable[[list[Message]], bool], timeout: float) -> bool:
        """Waits until ``done(messages)`` holds; False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while not done(list(self._seen)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(min(left, 0.2))
            return True

    @property
    def connected(self) -> bool:
        return self._client.is_connected

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Tap:
        return self.connect()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
