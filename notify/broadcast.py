"""In-process pub/sub of notices (alert and hazard events) for the API's Server-Sent Events stream.

The owner of an event publishes its ``Notice`` once, after the commit (alert events from
``alerting``, hazard events from ``supervision``); every subscriber gets its own bounded queue
and filters by ``notice.departments`` and ``notice.site``.
A subscriber that falls behind is not allowed to grow memory or slow the publisher: its
queue overflows, ``overflowed`` becomes true and the consumer should catch up from the book
(``StateStore.events_since(last_id)`` for alert events) and subscribe again. Silences do not apply here:
the stream shows the record, as the alert list does.

Thread-safe. ``subscribe()`` serves threads (``get(timeout)``); ``subscribe_async()`` serves
asyncio code such as a FastAPI SSE endpoint (``await get(timeout)``), woken through
``loop.call_soon_threadsafe`` so the publisher never touches the loop's objects directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator

from notify.notice import Notice


class Subscriber:
    """A thread consumer's queue; iterate it or call ``get``."""

    def __init__(self, owner: Broadcaster, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"subscriber maxsize={maxsize}: expected at least 1")
        self._owner = owner
        self._maxsize = maxsize
        self._items: deque[Notice] = deque()
        self._cond = threading.Condition()
        self.overflowed = False
        self.closed = False

    def _offer(self, notice: Notice) -> None:
        with self._cond:
            if len(self._items) >= self._maxsize:
                self.overflowed = True
            else:
                self._items.append(notice)
            self._cond.notify_all()
        if self.overflowed:
            self._owner.unsubscribe(self)
        self._wake()

    def _end(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._wake()

    def _wake(self) -> None:
        """Asyncio subscribers wake their loop here; thread consumers wait on the condition."""

    def _pop(self) -> Notice | None:
        with self._cond:
            return self._items.popleft() if self._items else None

    @property
    def finished(self) -> bool:
        """Closed or overflowed: nothing more will arrive (drain what is queued first)."""
        return self.closed or self.overflowed

    def get(self, timeout: float | None = None) -> Notice | None:
        """The next notice, or None on timeout, overflow or close (then check ``overflowed``)."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items) or self.finished, timeout)
            return self._items.popleft() if self._items else None

    def __iter__(self) -> Iterator[Notice]:
        while True:
            n = self.get(timeout=1.0)
            if n is not None:
                yield n
            elif self.finished:
                return

    def close(self) -> None:
        self._owner.unsubscribe(self)
        self._end()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncSubscriber(Subscriber):
    """A subscriber for one asyncio loop; create it from inside that loop."""

    def __init__(self, owner: Broadcaster, maxsize: int) -> None:
        super().__init__(owner, maxsize)
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._ready.set)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            self.closed = True
            self._owner.unsubscribe(self)

    async def get_async(self, timeout: float | None = None) -> Notice | None:
        """The next notice, or None on timeout, overflow or close (then check ``overflowed``)."""
        while True:
            self._ready.clear()
            n = self._pop()
            if n is not None or self.finished:
                return n
            try:
                # Cleared before the check above, so a publish in between still wakes us.
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None

    async def __aiter__(self) -> AsyncIterator[Notice]:
        while True:
            n = await self.get_async(timeout=1.0)
            if n is not None:
                yield n
            elif self.finished:
                return


class Broadcaster:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscriber] = []

    def subscribe(self, maxsize: int = 1000) -> Subscriber:
        sub = Subscriber(self, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def subscribe_async(self, maxsize: int = 1000) -> AsyncSubscriber:
        """Call from the event loop that will await the subscriber."""
        sub = AsyncSubscriber(self, maxsize)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, notice: Notice) -> None:
        """Hands ``notice`` to every subscriber without blocking."""
        with self._lock:
            subs = tuple(self._subs)
        for sub in subs:
            sub._offer(notice)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)

    def close(self) -> None:
        """Ends every subscription (at shutdown), waking their consumers."""
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            sub._end()
