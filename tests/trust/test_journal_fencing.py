"""The journal replay is fenced by the lease epoch its entries were recorded under (contract sections 7, 12).

A process replays its journal at start-up, before it claims any lease: an entry is applied only if
its partition's lease row still has the entry's epoch (nobody took the partition over since), else
it is skipped, the successor having restored that partition from the book and InfluxDB.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerting.journal import Journal, LeaseMark, lease_runs
from alerting.service import AlertService
from domain.alerts import AlertKey, EventType, Signal
from domain.severity import Severity
from service.partitions import partition_of
from store.state import StateStore
from store.state.book import BookTx
from tests.support.helpers import wait_until
from tests.support.lifecycle import batch, district
from tests.support.pg import PgServer

N, TTL_MS = 2, 60_000
SITE = "GS-1"


def fire(offset_ms: int = 0) -> Signal:
    key = AlertKey("vapor", SITE, "d1", "vapor_lel")
    return Signal.fire(key, family="gas_station", kind="threshold", at_ms=int(time.time() * 1000) + offset_ms,
                       severity=Severity.YELLOW, value=30.0, threshold=20.0)


def service(store: StateStore, journal: Journal | None) -> AlertService:
    return AlertService(district(), store, None, None, CollectorRegistry(), journal=journal)


def history(store: StateStore) -> list[EventType]:
    return [e.type for a in store.list_alerts() for e in store.get_alert(a.id).events]  # type: ignore[union-attr]


A, B = LeaseMark(0, 3, N), LeaseMark(1, 5, N)


@pytest.mark.parametrize(("leases", "entries"), [
    ([A, A], [("0", [0, 1], A)]),
    ([A, B, B, A], [("0", [0], A), ("1", [1, 2], B), ("0", [3], A)]),  # order kept across partitions
    ([None, A, None], [("0", [1], A)]),  # a partition not held: the fence would refuse it too
    ([None], []),
])
def test_journal_entries_are_runs_under_one_lease(leases: list[LeaseMark | None],
                                                  entries: list[tuple[str, list[int], LeaseMark]]) -> None:
    signals = [fire(i) for i in range(len(leases))]
    got = lease_runs(signals, leases)
    assert got == [(p, [signals[i] for i in idx], mark) for p, idx, mark in entries]


@pytest.mark.parametrize(("taken_over", "expected"), [
    (False, [EventType.FIRED]),  # the lease row is still at the entry's epoch: applied
    (True, []),  # another process claimed the partition since (epoch + 1): skipped
])
def test_a_journal_entry_replays_only_while_its_lease_epoch_stands(
        pg_store: StateStore, tmp_path: Path, taken_over: bool, expected: list[EventType]) -> None:
    k = partition_of(SITE, N)
    pg_store.ensure_partitions(N, TTL_MS)
    epoch = pg_store.claim(k, "dead-process", TTL_MS)
    assert epoch is not None
    journal = Journal(tmp_path / "journal")
    journal.append([(str(k), [fire()], LeaseMark(k, epoch, N))])
    journal.close()
    if taken_over:
        assert pg_store.release(k, "dead-process", epoch)
        assert pg_store.claim(k, "successor", TTL_MS) == epoch + 1
    svc = service(pg_store, Journal(tmp_path / "journal"))  # replays at construction, no lease claimed
    try:
        assert svc.book.journal_depth == 0  # applied or skipped, either way done with
    finally:
        svc.stop()
    assert history(pg_store) == expected
    assert [(x.partition, x.epoch) for x in pg_store.leases() if x.partition == k] == \
        [(k, epoch + 1 if taken_over else epoch)]  # the replay itself claims nothing
    service(pg_store, Journal(tmp_path / "journal")).stop()  # applied once: a restart replays nothing
    assert history(pg_store) == expected


def test_an_entry_of_another_partition_count_is_skipped(pg_store: StateStore, tmp_path: Path) -> None:
    """After SAFEWATCH_PARTITIONS changed, partition k names other sites: its old epoch proves nothing."""
    pg_store.ensure_partitions(N, TTL_MS)
    k = partition_of(SITE, N)
    epoch = pg_store.claim(k, "dead-process", TTL_MS)
    assert epoch is not None
    journal = Journal(tmp_path / "journal")
    journal.append([(str(k), [fire()], LeaseMark(k, epoch, N + 1))])
    journal.close()
    service(pg_store, Journal(tmp_path / "journal")).stop()
    assert history(pg_store) == []


class _Fence:
    """This process holds partition ``k`` of N under ``epoch`` (the cluster's view, without a cluster)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def admit(self, tx: BookTx, signals: Sequence[Signal]) -> Sequence[Signal]:
        return signals

    def lease_of(self, signal: Signal) -> LeaseMark | None:
        return LeaseMark(partition_of(signal.key.site, N), self.epoch, N)


def test_entries_journaled_by_a_leased_partition_carry_its_number_and_epoch(
        pg_store: StateStore, pg_server: PgServer, tmp_path: Path) -> None:
    k = partition_of(SITE, N)
    pg_store.ensure_partitions(N, TTL_MS)
    epoch = pg_store.claim(k, "me", TTL_MS)
    assert epoch is not None
    svc = service(pg_store, Journal(tmp_path / "journal"))
    svc.lifecycle.fence = _Fence(epoch)
    svc.start()
    try:
        pg_server.stop()
        ticket = svc.submit_batch(batch(vapor_lel=30))
        assert ticket is not None and ticket.wait(10) and ticket.journaled
        assert svc.book.journal is not None
        entries = list(svc.book.journal.entries())
        assert [(e.partition, e.lease) for e in entries] == [(str(k), LeaseMark(k, epoch, N))]
        pg_server.start()  # the lease is still at that epoch: the running replay applies it
        wait_until(lambda: svc.book.journal_depth == 0, 15, "journal replayed")
    finally:
        svc.stop()
    assert history(pg_store) == [EventType.FIRED]
