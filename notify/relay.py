"""Alert events other processes committed, into this process's broadcaster (contract section 12:
the SSE stream carries events raised in any process).

Polls the shared book (``StateStore.events_since``) a few times a second from one thread and
publishes each event this process did not publish itself. Local events are recognised by
their ids, which the relay learns from its own subscription to the broadcaster. An event
found in the book but not yet seen locally waits one poll before it is relayed: a local
commit is published right after it, so by then a local event has shown up; the SSE stream
skips ids it already sent in any case.

PostgreSQL hands out event ids in insert order but transactions commit in any order, so a
smaller id can become visible after a larger one. The relay therefore reads from a low-water
mark (every id up to it seen) rather than from the largest id seen, and steps over a gap
(an id that never commits: a rolled-back transaction) once it has stayed open for ``GAP_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from domain.alerts import Alert, AlertEvent
from notify.broadcast import Broadcaster, Subscriber
from notify.notice import Notice

log = logging.getLogger(__name__)
POLL_S = 0.25
GAP_S = 10.0
PAGE = 1000
_LOCAL_QUEUE = 100_000


class EventBook(Protocol):
    """The part of ``StateStore`` the relay reads."""

    def events_since(self, event_id: int, department: str | None = None,
                     limit: int = ...) -> list[tuple[AlertEvent, Alert]]: ...

    def last_event_id(self) -> int: ...


class Relay:
    """``notice(event, alert)`` builds what is published (``Planner.notice``)."""

    def __init__(self, book: EventBook, broadcaster: Broadcaster, notice: Callable[[AlertEvent, Alert], Notice],
                 poll_s: float = POLL_S, gap_s: float = GAP_S) -> None:
        self.book, self.broadcaster, self.notice = book, broadcaster, notice
        self.poll_s, self.gap_s = poll_s, gap_s
        self.relayed = 0
        self._floor = 0  # every id up to here is published (here or by another path)
        self._seen: set[int] = set()  # ids above the floor already published
        self._waiting: dict[int, tuple[AlertEvent, Alert]] = {}  # found in the book, not local (yet)
        self._gap_since: float | None = None
        self._sub: Subscriber | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # ``poll`` from the thread and from callers (tests)

    def start(self) -> None:
        self._sub = self.broadcaster.subscribe(maxsize=_LOCAL_QUEUE)
        self._floor = self.book.last_event_id()  # the stream starts from the book for older ones
        self._thread = threading.Thread(target=self._run, name="sse-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self._sub is not None:
            self._sub.close()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as exc:  # the database away: the next poll tries again
                if not failing:  # once per outage, not four times a second
                    log.warning("relay: reading the book failed (%s); retrying", type(exc).__name__)
                failing = True
            else:
                if failing:
                    log.info("relay: reading the book again")
                failing = False

    def _learn_local(self) -> None:
        sub = self._sub
        if sub is None:
            return
        while (n := sub.get(timeout=0)) is not None:
            if isinstance(n.event_id, int):
                self._mark(n.event_id)
        if sub.overflowed:  # fell behind by 100,000 local events: listen again
            sub.close()
            self._sub = self.broadcaster.subscribe(maxsize=_LOCAL_QUEUE)

    def _mark(self, event_id: int) -> None:
        if event_id > self._floor:
            self._seen.add(event_id)
            self._waiting.pop(event_id, None)

    def poll(self) -> int:
        """One round: relay what waited a poll and is still not local, read the book, advance
        the floor. Returns how many were relayed."""
        with self._lock:
            return self._poll()

    def _poll(self) -> int:
        self._learn_local()
        relayed = 0
        for event_id in sorted(self._waiting):
            event, alert = self._waiting.pop(event_id)
            self._seen.add(event_id)
            self.broadcaster.publish(self.notice(event, alert))
            relayed += 1
        # One page per round: a burst beyond it is read on the next rounds, as the floor moves.
        for event, alert in self.book.events_since(self._floor, None, PAGE):
            if event.id not in self._seen:
                self._waiting.setdefault(event.id, (event, alert))
        self._advance()
        self.relayed += relayed
        return relayed

    def _advance(self) -> None:
        """Moves the floor over contiguous published ids, and over a gap once it has waited ``gap_s``."""
        while True:
            nxt = self._floor + 1
            if nxt in self._seen:
                self._seen.discard(nxt)
                self._floor, self._gap_since = nxt, None
                continue
            if nxt in self._waiting or not any(i > nxt for i in (*self._seen, *self._waiting)):
                return
            now = time.monotonic()
            if self._gap_since is None:
                self._gap_since = now
            if now - self._gap_since < self.gap_s:
                return
            # Ids that never committed (a rolled-back transaction): step over them all.
            self._floor, self._gap_since = min((*self._seen, *self._waiting)) - 1, None
