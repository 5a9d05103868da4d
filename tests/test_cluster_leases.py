"""Partitions, balance and leases (contract section 12): the arithmetic, then claims on PostgreSQL."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator

import pytest

from alerting.lifecycle import Lifecycle
from alerting.route import Router
from domain.alerts import AlertKey, Signal
from domain.district import parse_district
from domain.severity import Severity
from service.cluster import Cluster, LeaseFence
from service.jobs import job_name
from service.partitions import client_id, fair_share, partition_of, preferred, site_filters, split
from store.state import StateStore
from store.state.leases import PartitionsMismatch

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


def test_run_exclusive_runs_one_at_a_time(pg_stores: Callable[[], StateStore]) -> None:
    a, b = pg_stores(), pg_stores()
    inner: list[tuple[bool, object]] = []

    def job() -> str:
        inner.append(b.run_exclusive("job", lambda: "b"))
        return "a"

    assert a.run_exclusive("job", job) == (True, "a") and inner == [(False, None)]
    assert b.run_exclusive("job", lambda: "b") == (True, "b")  # released after the run


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


DISTRICT = parse_district({
    "district": "fence", "timezone": "UTC",
    "departments": [{"id": "safety", "name": "S", "kind": "comprehensive"},
                    {"id": "street_a", "name": "A", "kind": "territorial"}],
    "streets": [{"id": "a", "name": "A", "office": "street_a"}],
    "sites": [{"id": f"S{i}", "name": f"S{i}", "family": "gas_station", "street": "a", "sector": "safety"}
              for i in range(8)],
    "rules": [{"id": "lel", "family": "gas_station", "metric": "vapor_lel", "kind": "threshold",
               "direction": "above", "levels": {"red": 50}}],
    "routing": [{"match": {}, "notify": ["sector"]}],
}, "test")


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
