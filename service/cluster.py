"""The partition leases of one process: claim, heartbeat, balance, release; the fence of book writes.

Timing, with T = ``SAFEWATCH_LEASE_TTL``. ``Cluster`` runs one thread that ticks every T/6:

1. refreshes this process's heartbeat and renews its leases to ``now + 3/4 T``; a lease it could
   not renew was taken over (this process was paused or cut off): that partition stops at once,
   without draining (what it had not acknowledged is redelivered to the new owner);
2. computes its fair share from the live processes (heartbeat younger than 3/4 T;
   ``service.partitions.fair_share``): over it, it drains the extra partitions and releases them;
   under it, it claims free or expired ones;
3. drops the rows of processes silent for ten TTLs (killed ones), so the table stays readable.

Between ticks it also wakes when a lease held by another process runs out. So a process that
dies right after a renewal has its partitions claimed 3/4 T later plus one claim round (a few
database round trips): within T while that round takes under T/4. A renewal may come up to
3/4 T - T/6 = 7/12 T late (a stall, a slow database) before the lease lapses.

After a tick that failed (the state database was away) or came more than 3/4 T after the last
good one, every heartbeat may look stale only because nobody could write it: for one T this
process claims no partition another process holds, only free ones (and renews its own), so the
owners renew theirs and replay their journals first instead of having their entries superseded.
Nothing is claimed at all while ``ready()`` is false (the runtime's journal still holds entries:
a claim would raise the epoch under them).

With the ``scheduler`` role the process also competes for the ``SCHEDULER`` lease, held and
renewed the same way; the district-wide jobs run only where it is held (``holds_scheduler``).

Starting and stopping a partition (restore, connect, drain) runs on a thread of its own per
partition, so a slow takeover never delays the heartbeat. ``stop()`` (SIGTERM) drains every held
partition and releases its lease (and the scheduler's) before the process exits, so the others
take over at their next tick instead of after the TTL.

With SQLite there is one process: ``static=True`` takes every partition at start, no balancing.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.exc import SQLAlchemyError

from alerting.journal import LeaseMark
from domain.alerts import Signal
from service.partitions import fair_share, partition_of, preferred
from store.state.book import BookTx
from store.state.leases import SCHEDULER, Lease
from store.state.store import StateStore

log = logging.getLogger(__name__)
PURGE_AFTER_TTLS = 10
LEASE_SHARE = 0.75  # a lease (and a heartbeat) lasts this share of the TTL past its renewal
TICKS_PER_TTL = 6
WAKE_MARGIN_S = 0.02  # past a lease's end before claiming it: the database's clock decides


class Partitions(Protocol):
    """What the runtime does when a partition is won or lost (both may block for seconds)."""

    def open(self, partition: int, epoch: int) -> None: ...

    def close(self, partition: int, drain: bool) -> None: ...

    def abort(self, partition: int) -> None:
        """Drop the partition's MQTT session at once (from any thread but its network thread)."""


def process_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Cluster:
    def __init__(self, state: StateStore, partitions: int, ttl_s: float, roles: Collection[str],
                 parts: Partitions, *, static: bool = False, registry: CollectorRegistry | None = None,
                 ready: Callable[[], bool] = lambda: True) -> None:
        self.state = state
        self.n = partitions
        self.ttl_s = ttl_s
        self.ttl_ms = int(ttl_s * 1000)
        self.lease_ms = max(1, int(self.ttl_ms * LEASE_SHARE))
        self.tick_s = max(0.05, ttl_s / TICKS_PER_TTL)
        self.roles = tuple(sorted(roles))
        self.ingest = "ingest" in roles
        self.scheduling = "scheduler" in roles and not static
        self.static = static
        self.id = process_id()
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._parts = parts
        self._ready = ready
        self.waiting = False  # claims held back until ready() (for /health)
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # partition → epoch, as the database last confirmed
        self._renewed_at: dict[int, float] = {}  # partition → monotonic time of the last renewal
        self._busy: dict[int, threading.Thread] = {}  # partitions being opened or closed
        self._fenced: set[int] = set()
        self._sched: int | None = None  # the SCHEDULER lease's epoch while held
        self._sched_renewed_at = 0.0
        self._failed = False  # the last tick failed on the database
        self._last_ok: float | None = None  # monotonic start of the last tick that succeeded
        self._grace_until = 0.0  # monotonic: until then, no claim of a lease another process holds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        reg = registry if registry is not None else CollectorRegistry()
        self._m_lost = Counter("safewatch_partitions_lost", "Leases found taken over by another process",
                               registry=reg)
        self._m_fenced = Counter("safewatch_fenced_signals", "Alert signals refused because the partition's "
                                 "lease is no longer this process's", registry=reg)
        Gauge("safewatch_partitions_held", "Partitions this process holds", registry=reg
              ).set_function(lambda: float(len(self._held)))

    # -- what others ask ----------------------------------------------------------------------------

    def held(self) -> dict[int, int]:
        with self._lock:
            return dict(self._held)

    def epoch_of(self, partition: int) -> int | None:
        return self._held.get(partition)

    def may_reconnect(self, partition: int, epoch: int) -> bool:
        """Checked before a partition's MQTT session reconnects: the lease is still this epoch's.

        With the database unreachable, the local view decides: renewed within the lease's length."""
        if self._held.get(partition) != epoch or partition in self._fenced:
            return False
        try:
            return partition in self.state.holds(self.id, {partition: epoch})
        except SQLAlchemyError:
            at = self._renewed_at.get(partition, 0.0)
            return time.monotonic() - at < self.lease_ms / 1000

    def holds_scheduler(self) -> bool:
        """Whether the district-wide jobs may run here now: the ``SCHEDULER`` lease is this
        process's, by the database (a paused process resumed finds it taken over)."""
        epoch = self._sched
        if epoch is None or time.monotonic() - self._sched_renewed_at >= self.lease_ms / 1000:
            return False
        try:
            return SCHEDULER in self.state.holds(self.id, {SCHEDULER: epoch})
        except SQLAlchemyError:
            return False

    def fenced(self, partitions: Collection[int], signals: int) -> None:
        """A book write found these leases gone: stop acting for them now (the tick cleans up)."""
        self._m_fenced.inc(signals)
        with self._lock:
            new = [k for k in partitions if k in self._held and k not in self._fenced]
            self._fenced.update(new)
        for k in new:
            log.warning("partition %d: lease lost (fenced book write); dropping its session", k)
            try:
                self._parts.abort(k)
            except Exception:
                log.exception("partition %d: abort failed", k)

    # -- life -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Registers the process and, static or not, takes the first partitions before returning
        (so a single process subscribes before ``serve`` reports healthy), unless not ``ready()``
        yet: then the thread claims them once it is."""
        if self.static:  # one process on SQLite: rows of earlier (killed) runs are history
            self.state.purge_processes(0)
        self.state.register_process(self.pid, self.host, self.id, self.roles, self.n)
        self.state.ensure_partitions(self.n, self.ttl_ms)
        delay = self._tick()
        # Ticking already: opening the first partitions may take longer than a lease lasts.
        self._thread = threading.Thread(target=self._run, args=(delay,), name="leases", daemon=True)
        self._thread.start()
        self._join_busy(60.0)  # the first partitions open before serve reports healthy

    def stop(self, timeout: float = 30.0) -> None:
        """Drains every held partition, releases its lease (and the scheduler's), leaves the process table."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._join_busy(timeout)
        held = self.held()
        workers = [threading.Thread(target=self._close, args=(k, e, True), name=f"release-p{k}")
                   for k, e in held.items()]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout)
        try:
            if self._sched is not None:
                self.state.release(SCHEDULER, self.id, self._sched)
                self._sched = None
            self.state.remove_process(self.id)
        except SQLAlchemyError as err:
            log.warning("leaving the process table failed (%s); the row expires by itself", type(err).__name__)

    def _run(self, delay: float) -> None:
        while not self._stop.wait(delay):
            delay = self.tick_s
            try:
                delay = self._tick()
            except SQLAlchemyError as err:
                self._failed = True
                log.warning("leases: state database unavailable (%s); keeping partitions as they are",
                            type(err).__name__)
            except Exception:
                log.exception("leases: tick failed")

    def _tick(self) -> float:
        """One round; returns how long to sleep before the next."""
        t0 = time.monotonic()
        self.state.beat(self.id)
        if self._failed or (self._last_ok is not None and t0 - self._last_ok > self.lease_ms / 1000):
            # Everyone's heartbeat may look stale now only because nobody could write it.
            self._grace_until = t0 + self.ttl_s
            log.info("leases: back after %s; no lease of another process is claimed for %.1fs",
                     "a database failure" if self._failed else "a stall", self.ttl_s)
        self._failed, self._last_ok = False, t0
        held = self.held()
        claims = dict(held) if self._sched is None else held | {SCHEDULER: self._sched}
        renewed = self.state.renew(self.id, claims, self.lease_ms)
        with self._lock:
            for k in renewed:
                self._renewed_at[k] = t0
        if self._sched is not None:
            if SCHEDULER in renewed:
                self._sched_renewed_at = t0
            else:
                log.warning("scheduler lease no longer ours; district-wide jobs stop here")
                self._sched = None
        for k in set(held) - renewed:
            if self._held.get(k) == held[k]:  # not released meanwhile by a drain of our own
                self._lose(k)
        for k in list(self._fenced):
            if k in self._held:
                self._lose(k)
        if self._stop.is_set():
            return self.tick_s
        now_ms, table = self.state.lease_table()
        t_table = time.monotonic()
        if self.scheduling and self._sched is None:
            row = next((r for r in table if r.partition == SCHEDULER), None)
            if row is not None and self._claimable(row, now_ms, t0):
                epoch = self.state.claim(SCHEDULER, self.id, self.lease_ms)
                if epoch is not None:
                    log.info("scheduler lease taken (epoch %d): district-wide jobs run here", epoch)
                    self._sched, self._sched_renewed_at = epoch, t0
        if not self.ingest:
            return self._next_wake(table, now_ms, t_table)
        waiting = not self._ready()
        if waiting != self.waiting:
            log.info("leases: %s", "the alert journal holds entries: claiming nothing until they are replayed"
                     if waiting else "the alert journal is replayed: claiming again")
        self.waiting = waiting
        if waiting:
            return self.tick_s
        if self.static:
            self._claim_all()
            return self.tick_s
        live = [p.id for p in self.state.live_processes(self.lease_ms, role="ingest")]
        target = fair_share(self.n, live, self.id)
        mine = self.held()
        if len(mine) > target:
            order = preferred(self.n, live, self.id)
            extra = sorted(mine, key=order.index)[target:]
            for k in extra:
                if k in self._busy:
                    continue  # still opening, or already closing
                self._spawn(k, self._close, k, mine[k], True)
        elif len(mine) < target:
            free = {r.partition for r in table if r.partition >= 0 and self._claimable(r, now_ms, t0)}
            self._claim(target - len(mine), preferred(self.n, live, self.id), free)
        self.state.purge_processes(PURGE_AFTER_TTLS * self.ttl_ms)
        return self._next_wake(table, now_ms, t_table)

    def _claimable(self, row: Lease, now_ms: int, t0: float) -> bool:
        """Free; or expired, and ours or (outside the grace after an outage) another process's."""
        if row.owner is None:
            return True
        if row.lease_until_ms > now_ms:
            return False
        return row.owner == self.id or t0 >= self._grace_until

    def _next_wake(self, table: Sequence[Lease], now_ms: int, t_table: float) -> float:
        """The next regular tick, or sooner: just after the first lease of another process that
        this process could take runs out (so a dead process's partitions move at once)."""
        ends = [r.lease_until_ms for r in table
                if r.owner is not None and r.owner != self.id and r.lease_until_ms > now_ms
                and ((r.partition >= 0 and self.ingest and not self.static)
                     or (r.partition == SCHEDULER and self.scheduling and self._sched is None))]
        delay = self.tick_s
        if ends:
            wake = t_table + (min(ends) - now_ms) / 1000 + WAKE_MARGIN_S
            delay = min(delay, wake - time.monotonic())
        return max(0.005, delay)

    def _claim(self, want: int, order: Sequence[int], free: Collection[int]) -> None:
        for k in order:
            if want <= 0:
                break
            if k not in free or k in self._held or k in self._busy:
                continue
            epoch = self.state.claim(k, self.id, self.lease_ms)
            if epoch is None:
                continue  # someone was quicker
            self._won(k, epoch)
            want -= 1

    def _claim_all(self) -> None:
        """One process on SQLite: every partition is this process's, whatever a dead one left."""
        for k in range(self.n):
            if k in self._held:
                continue
            epoch = self.state.claim(k, self.id, self.lease_ms)
            if epoch is None:  # a row of the previous (killed) run: on SQLite nobody else exists
                self.state.release_any(k)
                epoch = self.state.claim(k, self.id, self.lease_ms)
            if epoch is not None:
                self._won(k, epoch)

    def _won(self, k: int, epoch: int) -> None:
        log.info("partition %d: lease taken (epoch %d)", k, epoch)
        with self._lock:
            self._held[k] = epoch
            self._renewed_at[k] = time.monotonic()
            self._fenced.discard(k)
        if self._stop.is_set():
            return
        self._spawn(k, self._open, k, epoch)

    def _lose(self, k: int) -> None:
        self._m_lost.inc()
        log.warning("partition %d: lease no longer ours; stopping it without draining", k)
        with self._lock:
            self._held.pop(k, None)
            self._renewed_at.pop(k, None)
        self._spawn(k, self._close_lost, k)

    def _spawn(self, k: int, fn: Callable[..., None], *args: object) -> None:
        """Runs ``fn`` for partition ``k`` on its own thread, after whatever runs for ``k`` now."""
        before = self._busy.get(k)

        def run() -> None:
            if before is not None:
                before.join()
            try:
                fn(*args)
            except Exception:
                log.exception("partition %d: %s failed", k, getattr(fn, "__name__", fn))
            finally:
                with self._lock:
                    if self._busy.get(k) is threading.current_thread():
                        del self._busy[k]

        t = threading.Thread(target=run, name=f"partition-{k}", daemon=True)
        with self._lock:
            self._busy[k] = t
        t.start()

    def _join_busy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = list(self._busy.values())
            if not busy:
                return
            for t in busy:
                t.join(max(0.1, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                return

    def _open(self, k: int, epoch: int) -> None:
        if self._held.get(k) != epoch:
            return  # lost again before it started
        self._parts.open(k, epoch)

    def _close(self, k: int, epoch: int, drain: bool) -> None:
        """Stop partition ``k`` (drain: everything taken in is processed and acknowledged) and release."""
        self._parts.close(k, drain)
        with self._lock:
            if self._held.get(k) == epoch:
                del self._held[k]
        try:
            if self.state.release(k, self.id, epoch):
                log.info("partition %d: lease released (epoch %d)", k, epoch)
        except SQLAlchemyError as err:
            log.warning("partition %d: release failed (%s); it expires after the TTL", k, type(err).__name__)

    def _close_lost(self, k: int) -> None:
        self._parts.close(k, False)
        with self._lock:
            self._fenced.discard(k)


class LeaseFence:
    """The fence of every engine-driven book write: admits only signals of partitions whose lease
    this process holds under the epoch it opened them with, checked in the write's transaction."""

    def __init__(self, cluster: Cluster, partitions: int, sites: Mapping[str, object]) -> None:
        self._cluster = cluster
        self._part = {site: partition_of(site, partitions) for site in sites}
        self._n = partitions

    def partition(self, site: str) -> int:
        k = self._part.get(site)
        return partition_of(site, self._n) if k is None else k

    def lease_of(self, signal: Signal) -> LeaseMark | None:
        """The lease the signal's partition is held under now, recorded with a journal entry."""
        k = self.partition(signal.key.site)
        epoch = self._cluster.epoch_of(k)
        return None if epoch is None else LeaseMark(k, epoch, self._n)

    def admit(self, tx: BookTx, signals: Sequence[Signal]) -> list[Signal]:
        held = self._cluster.held()
        parts = {self.partition(s.key.site) for s in signals}
        claims = {k: held[k] for k in parts if k in held}
        ok = tx.holds(self._cluster.id, claims)
        lost = parts - ok
        if not lost:
            return list(signals)
        refused = [s for s in signals if self.partition(s.key.site) in lost]
        log.warning("fenced: %d signals of partitions %s refused (lease not ours)", len(refused), sorted(lost))
        self._cluster.fenced(lost, len(refused))
        return [s for s in signals if self.partition(s.key.site) in ok]
