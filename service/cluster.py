"""The partition leases of one process: claim, heartbeat, balance, release; the fence of book writes.

``Cluster`` runs one thread that, every quarter of ``SAFEWATCH_LEASE_TTL``:

1. refreshes this process's heartbeat and renews its leases; a lease it could not renew was
   taken over (this process was paused or cut off past its TTL): that partition stops at once,
   without draining (what it had not acknowledged is redelivered to the new owner);
2. computes its fair share from the live processes (``service.partitions.fair_share``): over it,
   it drains the extra partitions and releases them; under it, it claims free or expired ones;
3. drops the rows of processes silent for ten TTLs (killed ones), so the table stays readable.

Starting and stopping a partition (restore, connect, drain) runs on a thread of its own per
partition, so a slow takeover never delays the heartbeat. ``stop()`` (SIGTERM) drains every held
partition and releases its lease before the process exits, so the others take over at their next
tick instead of after the TTL.

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
from store.state.store import StateStore

log = logging.getLogger(__name__)
PURGE_AFTER_TTLS = 10


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
                 parts: Partitions, *, static: bool = False, registry: CollectorRegistry | None = None) -> None:
        self.state = state
        self.n = partitions
        self.ttl_ms = int(ttl_s * 1000)
        self.tick_s = max(0.1, ttl_s / 4)
        self.roles = tuple(sorted(roles))
        self.ingest = "ingest" in roles
        self.static = static
        self.id = process_id()
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._parts = parts
        self._lock = threading.Lock()
        self._held: dict[int, int] = {}  # partition → epoch, as the database last confirmed
        self._renewed_at: dict[int, float] = {}  # partition → monotonic time of the last renewal
        self._busy: dict[int, threading.Thread] = {}  # partitions being opened or closed
        self._fenced: set[int] = set()
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

        With the database unreachable, the local view decides: renewed within the TTL."""
        if self._held.get(partition) != epoch or partition in self._fenced:
            return False
        try:
            return partition in self.state.holds(self.id, {partition: epoch})
        except SQLAlchemyError:
            at = self._renewed_at.get(partition, 0.0)
            return time.monotonic() - at < self.ttl_ms / 1000

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
        (so a single process subscribes before ``serve`` reports healthy)."""
        if self.static:  # one process on SQLite: rows of earlier (killed) runs are history
            self.state.purge_processes(0)
        self.state.register_process(self.pid, self.host, self.id, self.roles, self.n)
        self.state.ensure_partitions(self.n, self.ttl_ms)
        self._tick()
        self._join_busy(60.0)  # the first partitions open before serve reports healthy
        self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Drains every held partition, releases its lease, leaves the process table."""
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
            self.state.remove_process(self.id)
        except SQLAlchemyError as err:
            log.warning("leaving the process table failed (%s); the row expires by itself", type(err).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self._tick()
            except SQLAlchemyError as err:
                log.warning("leases: state database unavailable (%s); keeping partitions as they are",
                            type(err).__name__)
            except Exception:
                log.exception("leases: tick failed")

    def _tick(self) -> None:
        t0 = time.monotonic()
        self.state.beat(self.id)
        held = self.held()
        renewed = self.state.renew(self.id, held, self.ttl_ms)
        with self._lock:
            for k in renewed:
                self._renewed_at[k] = t0
        for k in set(held) - renewed:
            if self._held.get(k) == held[k]:  # not released meanwhile by a drain of our own
                self._lose(k)
        for k in list(self._fenced):
            if k in self._held:
                self._lose(k)
        if self._stop.is_set() or not self.ingest:
            return
        if self.static:
            self._claim_all()
            return
        live = [p.id for p in self.state.live_processes(self.ttl_ms, role="ingest")]
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
            self._claim(target - len(mine), preferred(self.n, live, self.id))
        self.state.purge_processes(PURGE_AFTER_TTLS * self.ttl_ms)

    def _claim(self, want: int, order: Sequence[int]) -> None:
        free = set(self.state.claimable())
        for k in order:
            if want <= 0:
                break
            if k not in free or k in self._held or k in self._busy:
                continue
            epoch = self.state.claim(k, self.id, self.ttl_ms)
            if epoch is None:
                continue  # someone was quicker
            self._won(k, epoch)
            want -= 1

    def _claim_all(self) -> None:
        """One process on SQLite: every partition is this process's, whatever a dead one left."""
        for k in range(self.n):
            if k in self._held:
                continue
            epoch = self.state.claim(k, self.id, self.ttl_ms)
            if epoch is None:  # a row of the previous (killed) run: on SQLite nobody else exists
                self.state.release_any(k)
                epoch = self.state.claim(k, self.id, self.ttl_ms)
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
