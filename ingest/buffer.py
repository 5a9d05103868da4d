"""The bounded hand-off between paho's network thread and the ingest worker.

Bounded by count and by bytes: a burst of small messages and a few huge ones both stop at
a fixed memory cost. A full buffer blocks the network thread, which stops reading the
socket, so the broker holds the rest (TCP backpressure); nothing is dropped. The consumer
takes everything waiting in one call, so a lock is taken once per batch on its side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BoundedBuffer(Generic[T]):
    def __init__(self, max_items: int, max_bytes: int) -> None:
        if max_items < 1 or max_bytes < 1:
            raise ValueError(f"max_items={max_items}, max_bytes={max_bytes}: both must be at least 1")
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: list[tuple[T, int]] = []
        self._bytes = 0
        self._closed = False
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = threading.Condition(self._lock)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def put(self, item: T, size: int, still_wanted: Callable[[], bool] = lambda: True) -> bool:
        """Append, waiting while full; False if closed (or no longer wanted) before there was room.

        One item larger than ``max_bytes`` is still let in when the buffer is empty, or it
        could never pass.
        """
        with self._lock:
            while (self._items and (len(self._items) >= self.max_items or self._bytes + size > self.max_bytes)
                   and not self._closed):
                self._not_full.wait(0.25)
                if not still_wanted():
                    return False
            if self._closed:
                return False
            self._items.append((item, size))
            self._bytes += size
            if len(self._items) == 1:
                self._not_empty.notify()
            return True

    def put_many(self, items: list[T], size: int, still_wanted: Callable[[], bool] = lambda: True) -> bool:
        """Append a list whose sizes sum to ``size`` as one, waiting while it would not fit."""
        with self._lock:
            while (self._items and (len(self._items) + len(items) > self.max_items
                                    or self._bytes + size > self.max_bytes) and not self._closed):
                self._not_full.wait(0.25)
                if not still_wanted():
                    return False
            if self._closed:
                return False
            was_empty = not self._items
            per_item = size // max(1, len(items))
            self._items.extend((item, per_item) for item in items)
            self._bytes += per_item * len(items)
            if was_empty:
                self._not_empty.notify()
            return True

    def take(self, max_items: int, timeout: float) -> list[T]:
        """Up to ``max_items`` items, waiting up to ``timeout`` for the first."""
        with self._lock:
            if not self._items and not self._closed:
                self._not_empty.wait(timeout)
            taken = self._items[:max_items]
            del self._items[:max_items]
            if taken:
                self._bytes -= sum(size for _, size in taken)
                self._not_full.notify_all()
            return [item for item, _ in taken]

    def close(self) -> None:
        """Refuse further puts and wake every waiter; items already in stay takeable."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()
            self._not_empty.notify_all()
