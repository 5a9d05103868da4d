"""Partitions, balance and leases (contract section 12): the arithmetic, then claims on PostgreSQL."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alerting.lifecycle import Lifecycle
from alerting.route import Router
from alerting.service import AlertService
from domain.alerts import AlertKey, AlertState, Signal
from domain.district import parse_district
from domain.severity import Severity
from service.cluster import Cluster, LeaseFence
from service.engines import PartitionedEngine
from service.ingests import IngestSet
from service.jobs import ClusterScheduler, job_name
from service.partitions import client_id, fair_share, partition_of, preferred, site_filters, split
from store.deadletters import DeadLetters
from store.state import StateStore
from store.state.leases import FENCED_IDLE_MS, PartitionsMismatch, holds
from tests.support.pg import PgServer

# -- arithmetic -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "processes", "shares"), [
    (1, 1, [1]),
    (1, 3, [1, 0, 0]),
    (4, 1, [4]),
    (4, 2, [2, 2]),
    (4, 3, [2, 1, 1]),
    (4, 4, [1, 1, 1, 1]),
    (4, 5, [1, 1, 1, 1, 0]),
    (7, 3, [3, 2, 2]),
    (16, 5, [4, 3, 3, 3, 3]),
])
def test_fair_share_differs_by_at_most_one_and_covers_all(n: int, processes: int, shares: list[int]) -> None:
    ids = [f"proc-{i}" for i in range(processes)]
    got = [fair_share(n, ids, me) for me in ids]
    assert got == shares
    assert sum(got) == n and max(got) - min(got) <= 1


@pytest.mark.parametrize(("live", "me", "expected"), [
    ([], "a", 4),  # the first heartbeat is not in the table yet: alone, it takes everything
    (["b"], "a", 2),
    (["a", "b", "c"], "c", 1),
])
def test_fair_share_counts_me_as_live(live: list[str], me: str, expected: int) -> None:
    assert fair_share(4, live, me) == expected


@pytest.mark.parametrize(("live", "me", "first"), [
    (["a", "b"], "a", [0, 2]),
    (["a", "b"], "b", [1, 3]),
    (["a", "b", "c"], "c", [2, 5]),
])
def test_preferred_starts_with_own_stride(live: list[str], me: str, first: list[int]) -> None:
    order = preferred(6, live, me)
    assert sorted(order) == list(range(6))
    assert order[:len(first)] == first


@pytest.mark.parametrize(("site", "n"), [("GS-001", 4), ("CV-017", 4), ("x", 3), ("UG_9", 1)])
def test_partition_is_crc32_mod_n(site: str, n: int) -> None:
    assert partition_of(site, n) == zlib.crc32(site.encode()) % n
    assert site in split(["GS-001", "CV-017", "x", "UG_9"], n)[partition_of(site, n)]


@pytest.mark.parametrize(("k", "n", "expected"), [
    (0, 1, "safewatch-d1-ingest"), (0, 4, "safewatch-d1-p0of4"), (3, 4, "safewatch-d1-p3of4")])
def test_client_ids(k: int, n: int, expected: str) -> None:
    assert client_id("d1", k, n) == expected


def test_site_filters_name_only_the_partitions_sites() -> None:
    assert site_filters("d1", ["A", "B"]) == ["d1/+/A/+/telemetry", "d1/+/A/+/status",
                                              "d1/+/B/+/telemetry", "d1/+/B/+/status"]


@pytest.mark.parametrize(("job_id", "name"), [
    ("deadman-sweep-140234", "deadman-sweep"), ("escalation-1", "escalation"), ("retention", "retention")])
def test_job_names(job_id: str, name: str) -> None:
    assert job_name(job_id, print) == name


# -- leases on PostgreSQL ---------------------------------------------------------------------------


@pytest.fixture
def pg_stores(pg_database: str) -> Iterator[Callable[[], StateStore]]:
    opened: list[StateStore] = []

    def make() -> StateStore:
        opened.append(StateStore(pg_database))
        return opened[-1]

    yield make
    for s in opened:
        s.close()


TTL_MS = 400


@pytest.mark.parametrize(("steps", "owners", "epochs"), [
    # (who, action) in order; then the owner and epoch of partition 0
    ([("a", "claim")], ["a"], [1]),
    ([("a", "claim"), ("b", "claim")], ["a"], [1]),  # held: the second claim fails
    ([("a", "claim"), ("a", "release"), ("b", "claim")], ["b"], [2]),  # released: taken at once
    ([("a", "claim"), ("wait", ""), ("b", "claim")], ["b"], [2]),  # expired after the TTL
    ([("a", "claim"), ("a", "renew"), ("b", "claim")], ["a"], [1]),
    ([("a", "claim"), ("wait", ""), ("b", "claim"), ("a", "renew"), ("a", "release")], ["b"], [2]),
])
def test_claim_renew_release_expire(pg_stores: Callable[[], StateStore], steps: list[tuple[str, str]],
                                    owners: list[str], epochs: list[int]) -> None:
    store = pg_stores()
    store.ensure_partitions(1, TTL_MS)
    epoch_of: dict[str, int] = {}
    for who, action in steps:
        if who == "wait":
            time.sleep(TTL_MS / 1000 + 0.1)
        elif action == "claim":
            e = store.claim(0, who, TTL_MS)
            if e is not None:
                epoch_of[who] = e
        elif action == "renew":
            store.renew(who, {0: epoch_of[who]}, TTL_MS)
        elif action == "release":
            store.release(0, who, epoch_of[who])
    lease = store.leases()[0]
    assert [lease.owner] == owners and [lease.epoch] == epochs


def test_renew_after_takeover_reports_the_lease_lost(pg_stores: Callable[[], StateStore]) -> None:
    store = pg_stores()
    store.ensure_partitions(2, TTL_MS)
    assert store.claim(0, "a", TTL_MS) == 1 and store.claim(1, "a", TTL_MS) == 1
    time.sleep(TTL_MS / 1000 + 0.1)
    assert store.claim(1, "b", TTL_MS) == 2
    assert store.renew("a", {0: 1, 1: 1}, TTL_MS) == {0}
    assert store.holds("a", {0: 1, 1: 1}) == {0}
    assert store.holds("b", {1: 2}) == {1}


def test_other_partition_count_is_refused_while_its_processes_live(pg_stores: Callable[[], StateStore]) -> None:
    store = pg_stores()
    store.register_process(1, "h", "p1", ["ingest"], 4)
    store.ensure_partitions(4, 10_000)
    with pytest.raises(PartitionsMismatch, match="SAFEWATCH_PARTITIONS=2"):
        store.ensure_partitions(2, 10_000)
    store.remove_process("p1")
    store.ensure_partitions(2, 10_000)
    assert [lease.partition for lease in store.leases()] == [0, 1]


def test_epochs_never_repeat_when_the_partition_count_changes(pg_stores: Callable[[], StateStore]) -> None:
    """4 → 2 → 4: the rows are made anew each time, at the largest epoch any row had, so a journal
    entry recorded under partition 1 of 4 at epoch e can never match a later claim of it."""
    store = pg_stores()
    store.ensure_partitions(4, TTL_MS)
    epochs = []
    for _ in range(3):
        e = store.claim(1, "a", TTL_MS)
        assert e is not None and store.release(1, "a", e)
        epochs.append(e)
    store.ensure_partitions(2, TTL_MS)
    assert store.claim(1, "b", TTL_MS) == max(epochs) + 1
    store.ensure_partitions(4, TTL_MS)
    assert min(lease.epoch for lease in store.leases()) >= max(epochs) + 1
    again = store.claim(1, "c", TTL_MS)
    assert again is not None and again > max(epochs) + 1
    assert [lease.partition for lease in store.leases()] == [0, 1, 2, 3]  # the scheduler's row is not listed


class _NoParts:
    def __init__(self) -> None:
        self.opened: list[int] = []
        self.closed: list[tuple[int, bool]] = []

    def open(self, partition: int, epoch: int) -> None:
        self.opened.append(partition)

    def close(self, partition: int, drain: bool) -> None:
        self.closed.append((partition, drain))

    def abort(self, partition: int) -> None:
        pass


DISTRICT_DATA: dict[str, Any] = {
    "district": "fence", "timezone": "UTC",
    "departments": [{"id": "safety", "name": "S", "kind": "comprehensive"},
                    {"id": "street_a", "name": "A", "kind": "territorial"}],
    "streets": [{"id": "a", "name": "A", "office": "street_a"}],
    "sites": [{"id": f"S{i}", "name": f"S{i}", "family": "gas_station", "street": "a", "sector": "safety"}
              for i in range(8)],
    "rules": [{"id": "lel", "family": "gas_station", "metric": "vapor_lel", "kind": "threshold",
               "direction": "above", "levels": {"red": 50}}],
    "routing": [{"match": {}, "notify": ["sector"]}],
}
DISTRICT = parse_district(DISTRICT_DATA, "test")


def test_a_fenced_out_process_writes_nothing(pg_stores: Callable[[], StateStore]) -> None:
    """A process paused past its TTL: its successor claimed the partition, so its signals go nowhere."""
    old_store, new_store = pg_stores(), pg_stores()
    old = Cluster(old_store, 1, TTL_MS / 1000, {"ingest"}, _NoParts())
    old.start()
    assert old.held() == {0: 1}
    old._stop.set()  # paused: no more heartbeats (its thread idles)
    time.sleep(TTL_MS / 1000 + 0.1)
    new = Cluster(new_store, 1, TTL_MS / 1000, {"ingest"}, _NoParts())
    new.start()
    assert new.held() == {0: 2}
    lifecycle = Lifecycle(DISTRICT, old_store, Router(DISTRICT))
    lifecycle.fence = LeaseFence(old, 1, DISTRICT.sites)
    sig = Signal.fire(AlertKey("lel", "S1", "d1", "vapor_lel"), family="gas_station", kind="threshold",
                      at_ms=int(time.time() * 1000), severity=Severity.RED, value=80.0)
    assert lifecycle.apply([sig]) == []
    assert old_store.list_alerts() == []
    assert 0 in old._fenced
    ok = Lifecycle(DISTRICT, new_store, Router(DISTRICT))
    ok.fence = LeaseFence(new, 1, DISTRICT.sites)
    assert len(ok.apply([sig])) == 1
    new.stop()
    assert new_store.leases()[0].owner is None  # released on stop


def test_fence_admits_the_partitions_still_held(pg_stores: Callable[[], StateStore]) -> None:
    """One transaction with signals of two partitions: the one taken over is refused, the other written."""
    store, thief = pg_stores(), pg_stores()
    me = Cluster(store, 2, TTL_MS / 1000, {"ingest"}, _NoParts())
    me.start()
    me._stop.set()
    assert me.held() == {0: 1, 1: 1}
    lost_site = next(s for s in DISTRICT.sites if partition_of(s, 2) == 1)
    kept_site = next(s for s in DISTRICT.sites if partition_of(s, 2) == 0)
    time.sleep(TTL_MS / 1000 + 0.1)
    store.renew(me.id, {0: 1}, 60_000)  # partition 0 renewed, 1 left to expire and be taken
    assert thief.claim(1, "thief", 60_000) == 2
    lifecycle = Lifecycle(DISTRICT, store, Router(DISTRICT))
    lifecycle.fence = LeaseFence(me, 2, DISTRICT.sites)
    at = int(time.time() * 1000)
    sigs = [Signal.fire(AlertKey("lel", site, "d1", "vapor_lel"), family="gas_station", kind="threshold", at_ms=at,
                        severity=Severity.RED, value=90.0) for site in (lost_site, kept_site)]
    changes = lifecycle.apply(sigs)
    assert [c.alert.site for c in changes] == [kept_site]
    assert [a.site for a in store.list_alerts()] == [kept_site]
    assert me._fenced == {1}


# -- timing, outages, the scheduler lease ----------------------------------------------------------


def _stopped(c: Cluster) -> Cluster:
    """``c`` stops ticking as a paused or dead process would (its rows stay as they are)."""
    c._stop.set()
    assert c._thread is not None
    c._thread.join(10)
    return c


def test_a_dead_process_s_partitions_are_claimed_within_one_ttl(pg_stores: Callable[[], StateStore]) -> None:
    """Leases run 3/4 TTL from their last renewal and the survivor wakes when one runs out: the
    claim comes within the TTL of the holder's last renewal, so within the TTL of its death."""
    ttl_s = 3.0
    a = Cluster(pg_stores(), 4, ttl_s, {"ingest"}, _NoParts())
    a.start()
    b = Cluster(pg_stores(), 4, ttl_s, {"ingest"}, _NoParts())
    b.start()
    deadline = time.monotonic() + 3 * ttl_s
    while (len(a.held()), len(b.held())) != (2, 2):
        assert time.monotonic() < deadline, (a.held(), b.held())
        time.sleep(0.05)
    lost = set(_stopped(a).held())
    last_renewal = max(a._renewed_at[k] for k in lost)
    while not lost <= set(b.held()):
        assert time.monotonic() - last_renewal < 3 * ttl_s, b.held()
        time.sleep(0.01)
    took = time.monotonic() - last_renewal
    print(f"claimed {took:.2f}s after the dead holder's last renewal (TTL {ttl_s:g}s)")
    assert ttl_s * 0.75 - 0.05 < took < ttl_s  # not before its lease ran out; within the TTL
    b.stop()


def test_a_database_outage_longer_than_the_ttl_moves_no_partition(
        pg_store: StateStore, pg_server: PgServer, pg_database: str) -> None:
    """After an outage every heartbeat looks stale. Whoever ticks first must not take the others'
    partitions (their journal entries would be skipped as superseded): for one TTL each process
    claims only free ones and renews its own. A process that really died meanwhile (``dead``)
    loses its partition after that TTL, not before."""
    ttl_s = 2.0
    stores = [StateStore(pg_database) for _ in range(3)]
    try:
        live = [Cluster(stores[i], 3, ttl_s, {"ingest"}, _NoParts()) for i in range(2)]
        for c in live:
            c.start()
        dead = Cluster(stores[2], 3, ttl_s, {"ingest"}, _NoParts())
        dead.start()
        deadline = time.monotonic() + 5 * ttl_s
        while [len(c.held()) for c in (*live, dead)] != [1, 1, 1]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = [c.held() for c in live]
        dead_partition = next(iter(_stopped(dead).held()))
        pg_server.stop()
        time.sleep(3 * ttl_s)  # every lease and heartbeat runs out meanwhile
        pg_server.start()
        t_back = time.monotonic()
        while time.monotonic() - t_back < 0.5 * ttl_s:  # (the grace began when the server answered)
            assert [c.held() for c in live] == before  # nobody lost or took anything
            time.sleep(0.02)
        owner = {lease.partition: lease.owner for lease in pg_store.leases()}
        assert owner[dead_partition] == dead.id  # the grace: not yet taken
        while not any(dead_partition in c.held() for c in live):
            assert time.monotonic() - t_back < 6 * ttl_s, "the dead process's partition was never taken"
            time.sleep(0.05)
        for c, held in zip(live, before, strict=True):
            assert {k: e for k, e in c.held().items() if k != dead_partition} == held
            assert c._m_lost._value.get() == 0
        for c in live:
            c.stop()
    finally:
        for s in stores:
            s.close()


def test_nothing_is_claimed_until_the_journal_is_replayed(pg_stores: Callable[[], StateStore]) -> None:
    journal_empty = [False]
    c = Cluster(pg_stores(), 2, TTL_MS / 1000, {"ingest"}, _NoParts(), ready=lambda: journal_empty[0])
    c.start()  # returns at once: the thread claims later
    time.sleep(3 * TTL_MS / 1000)
    assert c.held() == {} and c.waiting
    assert [p.id for p in c.state.live_processes(c.lease_ms)] == [c.id]  # heartbeats go on meanwhile
    journal_empty[0] = True
    deadline = time.monotonic() + 10
    while len(c.held()) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not c.waiting
    c.stop()


def test_the_scheduler_lease_runs_jobs_in_one_process_and_moves_when_it_stops(
        pg_stores: Callable[[], StateStore]) -> None:
    """A scheduler holder that stops ticking (SIGSTOP keeps its connection, and would have kept a
    session advisory lock for good) loses the lease after the TTL; the other runs the jobs then."""
    a = Cluster(pg_stores(), 1, TTL_MS / 1000, {"scheduler"}, _NoParts())
    a.start()
    b = Cluster(pg_stores(), 1, TTL_MS / 1000, {"scheduler", "ingest"}, _NoParts())
    b.start()
    runs: list[str] = []
    jobs = {}
    for name, c in (("a", a), ("b", b)):
        sched = ClusterScheduler({"scheduler"})
        sched.lease = c.holds_scheduler
        jobs[name] = sched._wrap("escalation", lambda name=name: runs.append(name))
    for job in jobs.values():
        job()
    assert runs == ["a"] and a.holds_scheduler() and not b.holds_scheduler()
    assert b.held() == {0: 1}  # the partition is b's: a has no ingest role
    _stopped(a)
    deadline = time.monotonic() + 10
    while not b.holds_scheduler():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runs.clear()
    for job in jobs.values():
        job()
    assert runs == ["b"]  # a, resumed, finds the lease gone before its next run
    b.stop()
    assert [lease.owner for lease in b.state.lease_table()[1] if lease.partition < 0] == [None]  # released


def test_orphans_are_resolved_by_the_partition_holder_through_the_fence(
        pg_stores: Callable[[], StateStore], tmp_path: Path) -> None:
    """An alert whose site left the config is resolved by the process that holds the site's
    partition, once it holds it, through the fence; not by every process at start, unfenced."""
    n = 16
    gone = next(f"GONE{i}" for i in range(100)
                if not DISTRICT_SITES_IN[partition_of(f"GONE{i}", n)])
    k = partition_of(gone, n)
    store = pg_stores()
    with_gone = parse_district({**DISTRICT_DATA, "sites": [*DISTRICT_DATA["sites"], _site(gone)]}, "test")
    old = AlertService(with_gone, store)
    old.apply_signals([Signal.fire(AlertKey("lel", gone, "d1", "vapor_lel"), family="gas_station",
                                   kind="threshold", at_ms=int(time.time() * 1000), severity=Severity.RED,
                                   value=80.0)])
    old.stop()
    alerts = AlertService(DISTRICT, store, resolve_orphans=False)  # what a clustered process does
    alerts.start()
    try:
        assert [a.state for a in store.list_alerts()] == [AlertState.OPEN]
        cluster = Cluster(store, n, 60.0, {"ingest"}, _NoParts())
        store.ensure_partitions(n, 60_000)
        alerts.lifecycle.fence = LeaseFence(cluster, n, DISTRICT.sites)
        engine = PartitionedEngine(DISTRICT, n)
        ingests = IngestSet(DISTRICT, store, n, "mqtt://127.0.0.1:1", writer=None,  # type: ignore[arg-type]
                            on_batch=alerts.submit_batch, dead_letters=DeadLetters(tmp_path / "dl"),
                            registry=CollectorRegistry(), engine=engine, resolve=alerts.apply_signals)
        stale = store.claim(k, cluster.id, 60_000)
        assert stale is not None and store.release(k, cluster.id, stale)
        assert store.claim(k, "someone-else", 60_000) is not None
        cluster._held[k] = stale  # this process believes it still holds k: the fence says no
        ingests.open(k, stale)
        assert [a.state for a in store.list_alerts()] == [AlertState.OPEN]
        assert cluster._m_fenced._value.get() == 1
        ingests.close(k, False)
        assert store.release(k, "someone-else", stale + 1)
        epoch = store.claim(k, cluster.id, 60_000)
        assert epoch is not None
        cluster._held[k], cluster._fenced = epoch, set()
        ingests.open(k, epoch)
        [alert] = store.list_alerts()
        assert alert.state is AlertState.RESOLVED
        ingests.close(k, True)
    finally:
        alerts.stop()


DISTRICT_SITES_IN = split(DISTRICT.sites, 16)


def _site(site: str) -> dict[str, str]:
    return {"id": site, "name": site, "family": "gas_station", "street": "a", "sector": "safety"}


def test_a_fenced_write_paused_midway_holds_the_claim_back_only_for_a_while(
        pg_stores: Callable[[], StateStore]) -> None:
    """SIGSTOP after the fence check: the write's transaction keeps the lease row FOR SHARE. The
    claim does not hang on it (lock_timeout: the claimer's heartbeat goes on), the server ends
    the paused session after FENCED_IDLE_MS, and the claim goes through; nothing of it commits."""
    store, claimer = pg_stores(), pg_stores()
    store.ensure_partitions(1, TTL_MS)
    epoch = store.claim(0, "paused", TTL_MS)
    assert epoch is not None
    t0 = time.monotonic()
    with pytest.raises(DBAPIError, match="idle-in-transaction"), store._write() as s:
        assert holds(s, "paused", {0: epoch}) == {0}  # the fence passed; then the process stops
        time.sleep(TTL_MS / 1000 + 0.1)
        asked = time.monotonic()
        assert claimer.claim(0, "successor", TTL_MS) is None  # expired, but locked: not now
        assert time.monotonic() - asked < 2
        while (new := claimer.claim(0, "successor", TTL_MS)) is None:
            assert time.monotonic() - t0 < FENCED_IDLE_MS / 1000 + 10, "the paused session was never ended"
        assert new == epoch + 1
        print(f"claimed {time.monotonic() - t0:.1f}s after the paused write's fence check")
        s.execute(text("SELECT 1"))  # resumed: its session is gone (retried, the fence would refuse it)
    assert [(lease.owner, lease.epoch) for lease in claimer.leases()] == [("successor", epoch + 1)]
