"""Hazard events other processes committed, into this process's SSE broadcaster (contract section
12: the stream carries events raised in any process, e.g. by the one running the overdue job).

One thread polls ``hazard_events`` from a low-water mark (every id up to it handled) a few times
a second. An event this process published itself is skipped; one it has not seen waits one poll
before it is relayed, because a local commit is published right after it. PostgreSQL can make a
smaller id visible after a larger one, so the mark only moves over handled ids, and over a gap
(an id that never commits: a rolled-back transaction) once it has stayed open for ``GAP_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from domain.hazards import Hazard, HazardEvent
from store.state.store import StateStore

log = logging.getLogger(__name__)
POLL_S = 0.5
GAP_S = 10.0
KEEP_LOCAL = 10_000

Publish = Callable[[HazardEvent, Hazard], None]


class HazardRelay:
    def __init__(self, state: StateStore, publish: Publish, poll_s: float = POLL_S) -> None:
        self._state = state
        self._publish = publish
        self._poll_s = poll_s
        self._local: deque[int] = deque(maxlen=KEEP_LOCAL)
        self._local_set: set[int] = set()
        self._lock = threading.Lock()
        self._mark = 0
        self._done: set[int] = set()
        self._waiting: dict[int, int] = {}  # event id → polls seen without a local publish
        self._gap_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def local(self, event_id: int) -> None:
        """Called for every event this process publishes itself."""
        with self._lock:
            if len(self._local) == self._local.maxlen:
                self._local_set.discard(self._local[0])
            self._local.append(event_id)
            self._local_set.add(event_id)

    def poll(self) -> int:
        """One round; returns how many events were relayed."""
        relayed = 0
        for event, hazard in self._state.hazard_events_since(self._mark):
            if event.id in self._done:
                continue
            with self._lock:
                mine = event.id in self._local_set
            if mine:
                self._done.add(event.id)
            elif self._waiting.get(event.id, 0) >= 1:
                self._waiting.pop(event.id, None)
                self._done.add(event.id)
                self._publish(event, hazard)
                relayed += 1
            else:
                self._waiting[event.id] = 1
        self._advance()
        return relayed

    def _advance(self) -> None:
        while self._mark + 1 in self._done:
            self._mark += 1
            self._done.discard(self._mark)
        if not self._done and not self._waiting:
            self._gap_since = None
            return
        # Ids above the mark are handled or waiting, but the mark's successor never showed up.
        if self._gap_since is None:
            self._gap_since = time.monotonic()
        elif time.monotonic() - self._gap_since >= GAP_S and not self._waiting.get(self._mark + 1):
            self._mark += 1
            self._gap_since = None
            self._advance()

    def start(self) -> None:
        try:
            self._mark = self._state.last_hazard_event_id()
        except SQLAlchemyError:
            self._mark = 0
        self._thread = threading.Thread(target=self._run, name="hazard-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            try:
                self.poll()
            except SQLAlchemyError as err:
                log.debug("hazard relay: state database unavailable (%s)", type(err).__name__)
            except Exception:
                log.exception("hazard relay: a poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
