"""The alert book's writer thread: engine signals in, book transactions (or journal entries) out.

Ingest evaluates a batch on its own thread and hands the signals here through a bounded
queue (``submit``), getting a ``Ticket`` back; the messages are acknowledged once the
ticket is done, that is once the signals' book transaction has committed, or, while the
state database is away, once they are fsynced in the ``Journal``. A slow database therefore
slows the acknowledgements (and, through the broker's in-flight window, the inflow), never
the decoding. Nothing is dropped: without a journal, signals wait for the database.

A signal the book refuses for another reason than an outage (a value a column cannot hold, a
race with another process the constraint caught) is applied alone, so it cannot hold back the
rest; it is then counted (``safewatch_book_refused_signals``), logged, and kept with the reason in
the dead letters (``reason: book_refused``, the signal as JSON): its messages are acknowledged,
since applying it again would fail again, but it is not silently gone.

Order is kept: while the journal holds entries, new signals are journaled behind them, and
the journal is replayed, oldest first, as soon as the database answers again (probed every
``retry_s``). With leased partitions each entry records the lease its signals were produced
under and is replayed only while that lease's epoch stands (see ``alerting.journal``). After
each commit the post-commit side effects run here (``after``: InfluxDB points, SSE, delivery
wake-up).

Test-only fault hook: ``SAFEWATCH_TEST_FAULT=kill-before-book-commit`` makes the process
SIGKILL itself right before the first book commit, one second after the signals arrived (so
the readings that raised them are in InfluxDB by then): the crash the acks must survive.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from alerting.journal import (
    ALL_PARTITIONS,
    Batch,
    Journal,
    JournalEntry,
    JournalError,
    LeaseMark,
    lease_runs,
    signal_to_json,
)
from alerting.lifecycle import Change, Fence, Superseded
from domain.alerts import Signal
from store.deadletters import DeadLetters
from store.state.records import dt_to_ms
from store.state.store import StateStore

log = logging.getLogger(__name__)

DB_DOWN = (OperationalError, InterfaceError)  # worth retrying later, unlike a refused value
FAULT_ENV = "SAFEWATCH_TEST_FAULT"
MAX_QUEUE = 10_000
RETRY_S = 1.0

Apply = Callable[[Sequence[Signal], LeaseMark | None], list[Change]]


class _Down(Exception):
    """The database went away part-way: ``rest`` was not applied, ``changes`` were committed."""

    def __init__(self, rest: Sequence[Signal], changes: list[Change], err: Exception) -> None:
        super().__init__(f"{type(err).__name__}: {err}")
        self.rest, self.changes = rest, changes


class Ticket:
    """Done once its signals are in the book or in the journal; ``changes`` are the commits made."""

    def __init__(self, signals: Sequence[Signal], leases: Sequence[LeaseMark | None] = ()) -> None:
        self.signals = tuple(signals)
        self.leases = tuple(leases)  # per signal, when partitions are leased: what it was produced under
        self.changes: list[Change] = []
        self.journaled = False
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def when_done(self, callback: Callable[[], None]) -> None:
        """Calls ``callback`` once done (now, if it already is; else on the book writer's thread)."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def finish(self, changes: list[Change], journaled: bool = False) -> None:
        self.changes, self.journaled = changes, journaled
        with self._lock:
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            try:
                cb()
            except Exception:
                log.exception("book writer: a ticket callback failed")


def unapplied(state: StateStore, signals: Sequence[Signal]) -> list[Signal]:
    """The signals newer than their alert's last change: what a possibly-committed entry still lacks."""
    with state.transaction() as tx:
        out = []
        for s in signals:
            live = tx.live(s.key)
            if live is None or dt_to_ms(live.alert.updated_at) < s.at_ms:
                out.append(s)
        return out


class BookWriter:
    """Applies tickets with ``apply`` (the lifecycle) on its own thread; ``after`` gets the changes.

    ``guard`` filters the signals of the one journal entry a crash may have left half-known
    (see ``alerting.journal``); ``partition`` is written into journal entries without a lease.
    ``fence`` gives the lifecycle's fence once leases divide the sites (contract section 12): each
    signal's partition lease is taken from it at submission, journal entries carry it and the
    replay is fenced on it. ``dead_letters`` keeps the signals the book refuses (None: logged only).
    """

    def __init__(self, apply: Apply, after: Callable[[list[Change]], None], journal: Journal | None,
                 guard: Callable[[Sequence[Signal]], list[Signal]], *, partition: str = ALL_PARTITIONS,
                 fence: Callable[[], Fence | None] = lambda: None,
                 registry: CollectorRegistry | None = None, max_queue: int = MAX_QUEUE,
                 retry_s: float = RETRY_S, dead_letters: DeadLetters | None = None) -> None:
        self._apply, self._after, self._guard = apply, after, guard
        self.journal = journal
        self.dead_letters = dead_letters
        self.partition = partition
        self._fence = fence
        self._retry_s = retry_s
        self._max = max_queue
        self._queue: collections.deque[Ticket] = collections.deque()
        self._cond = threading.Condition()
        self._running = False
        self._thread: threading.Thread | None = None
        self._fault = os.environ.get(FAULT_ENV) == "kill-before-book-commit"
        reg = registry if registry is not None else CollectorRegistry()
        Gauge("safewatch_book_queue_depth", "Signal batches waiting for the alert book writer",
              registry=reg).set_function(lambda: len(self._queue))
        Gauge("safewatch_journal_depth", "Journal entries waiting for the state database",
              registry=reg).set_function(lambda: self.journal_depth)
        self._refused = Counter("safewatch_book_refused_signals",
                                "Engine signals the alert book refused (not an outage); kept in the dead letters",
                                registry=reg)

    @property
    def journal_depth(self) -> int:
        return len(self.journal) if self.journal is not None else 0

    def submit(self, signals: Sequence[Signal]) -> Ticket:
        """Queues signals for the book, blocking while the queue is full; in order of submission."""
        fence = self._fence()
        ticket = Ticket(signals, [fence.lease_of(s) for s in signals] if fence is not None else ())
        with self._cond:
            while len(self._queue) >= self._max and self._running:
                self._cond.wait(0.5)
            self._queue.append(ticket)
            self._cond.notify_all()
        if not self._running:  # not started (tests, start-up): apply on the caller's thread
            self._drain()
        return ticket

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="book-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Applies or journals what is queued, then stops the thread."""
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("book writer still busy after %.0fs; %d batches unrecorded (their messages "
                          "are not acknowledged, the broker redelivers them)", timeout, len(self._queue))
        if self.journal is not None:
            self.journal.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and self._running:
                    self._cond.wait(self._retry_s)
                if not self._queue and not self._running:
                    return
            try:
                self._drain()
            except Exception:  # a bug must not end the thread: the acks would stop for good
                log.exception("book writer failed; retrying in %.1fs", self._retry_s)
                time.sleep(self._retry_s)

    # -- one pass ---------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Replays the journal if it holds entries, then records every queued ticket."""
        if self.journal_depth and not self.replay():
            self._journal_queued()
            return
        while True:
            with self._cond:
                if not self._queue:
                    return
                ticket = self._queue[0]
            try:
                ticket.finish(self._commit(ticket.signals))
            except _Down as down:
                self._after(down.changes)
                if self.journal is None:
                    log.error("alerting: state database unavailable (%s); %d batches wait (no journal)",
                              down, len(self._queue))
                    # The ticket's done part is committed; only the rest is retried.
                    self._queue[0] = _rest(ticket, down)
                    time.sleep(self._retry_s)
                    return
                log.error("alerting: state database unavailable (%s); journaling signals", down)
                self._journal([(ticket, down.rest)])
                ticket.finish(down.changes, journaled=True)
                self._pop()
                self._journal_queued()
                return
            self._pop()

    def _pop(self) -> None:
        with self._cond:
            self._queue.popleft()
            self._cond.notify_all()

    def _journal_queued(self) -> None:
        """Database still away: everything queued goes behind the journal's entries."""
        if self.journal is None:
            time.sleep(self._retry_s)
            return
        with self._cond:
            tickets = list(self._queue)
        if not tickets:
            return
        self._journal([(t, t.signals) for t in tickets])
        for t in tickets:
            t.finish([], journaled=True)
            self._pop()

    def _journal(self, items: Sequence[tuple[Ticket, Sequence[Signal]]]) -> None:
        assert self.journal is not None
        try:
            self.journal.append([b for ticket, signals in items for b in self._entries(ticket, signals)])
        except JournalError:
            # Neither durable in the book nor on disk: those messages must not be acknowledged.
            log.exception("alerting: the journal cannot take %d batches; they wait", len(items))
            time.sleep(self._retry_s)
            raise

    def _entries(self, ticket: Ticket, signals: Sequence[Signal]) -> list[Batch]:
        """Journal entries for ``signals``: the ticket's, or what a failure left of them (a suffix)."""
        if not ticket.leases:
            return [(self.partition, signals)] if signals else []
        return lease_runs(signals, ticket.leases[len(ticket.signals) - len(signals):])

    def _commit(self, signals: Sequence[Signal], lease: LeaseMark | None = None) -> list[Change]:
        """One transaction for the signals; one by one if the book refuses one. Raises _Down, and
        Superseded when ``lease`` (a journal entry's) was claimed by someone since."""
        if self._fault:
            time.sleep(1.0)
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            changes = self._apply(signals, lease)
        except DB_DOWN as err:
            raise _Down(signals, [], err) from err
        except SQLAlchemyError:
            # One signal the database refuses (a value too long for a column, a race with
            # another process) must not hold back the rest: record them one by one.
            changes = []
            for i, sig in enumerate(signals):
                try:
                    changes += self._apply([sig], lease)
                except DB_DOWN as err:
                    raise _Down(signals[i:], changes, err) from err
                except Superseded:  # claimed between two of these transactions
                    self._after(changes)
                    raise
                except SQLAlchemyError as err:
                    self._refuse(sig, err)
        self._after(changes)
        return changes

    def _refuse(self, sig: Signal, err: SQLAlchemyError) -> None:
        """A signal the book will not take: counted, logged, kept in the dead letters."""
        self._refused.inc()
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        log.error("alerting: the book refused the signal for %s (%s); kept in the dead letters",
                  sig.key, reason, exc_info=err)
        if self.dead_letters is not None:
            k = sig.key
            self.dead_letters.add("book_refused", f"{k.rule}/{k.site}/{k.device}/{k.metric}",
                                  orjson.dumps(signal_to_json(sig)), f"the alert book refused it: {reason}",
                                  sig.at_ms)

    def replay(self) -> bool:
        """Applies journal entries in order; True when the journal is empty afterwards."""
        if self.journal is None:
            return True
        for entry in self.journal.entries():
            try:
                self._replay_one(entry)
            except (_Down, *DB_DOWN) as err:
                log.warning("alerting: journal replay paused at entry %d (%s)", entry.seq, err)
                return False
        log.info("alerting: journal replayed")
        return True

    def _replay_one(self, entry: JournalEntry) -> None:
        assert self.journal is not None
        signals: Sequence[Signal] = entry.signals
        if entry.seq == self.journal.uncertain_seq:
            signals = self._guard(signals)
        try:
            self._commit(signals, entry.lease)
        except Superseded as err:
            # The successor restored that partition from the book and InfluxDB: this is history now.
            log.warning("alerting: journal entry %d skipped (%d signals): %s", entry.seq, len(signals), err)
        except _Down as down:
            self._after(down.changes)
            if down.changes:  # part of it is in the book now
                self.journal.uncertain_seq = entry.seq
            raise
        self.journal.mark_applied(entry)


def _rest(ticket: Ticket, down: _Down) -> Ticket:
    """A ticket for what ``down`` left of ``ticket``, done when the original's callbacks should run."""
    rest = Ticket(down.rest, ticket.leases[len(ticket.signals) - len(down.rest):] if ticket.leases else ())
    rest.when_done(lambda: ticket.finish([*down.changes, *rest.changes]))
    return rest
