"""The overdue chain run by two processes at the same moment, on SQLite and PostgreSQL: the chain
takes no lock of its own (the scheduler decides who runs it), so overlapping runs must still take
each step exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from domain.hazards import HazardLevel
from store.state import StateStore
from store.state.records import dt_to_ms
from supervision.ledger import Move
from tests.support.supervision import DAY, SITE_S1, Parts


def test_two_processes_walking_the_chain_at_once_take_each_step_once(make_store: Callable[[], StateStore]) -> None:
    a, b = Parts(make_store()), Parts(make_store())
    try:
        hazards = [a.sup.ledger.file(SITE_S1, "S1", f"隐患 {i}", level=HazardLevel.GENERAL).hazard for i in range(4)]
        at = max(dt_to_ms(h.deadline) for h in hazards) + 3 * DAY + 5  # every step of every hazard is due
        start = threading.Barrier(2)
        results: dict[str, list[Move]] = {}
        errors: list[BaseException] = []

        def run(name: str, parts: Parts) -> None:
            start.wait()
            try:
                results[name] = parts.sup.run_overdue(at)
            except BaseException as err:  # surfaced below: a thread's exception is otherwise lost
                errors.append(err)

        threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        moves = results["a"] + results["b"]
        assert sorted(m.hazard.id for m in moves) == sorted(h.id for h in hazards for _ in range(3))
        for h in hazards:
            got = a.store.get_hazard(h.id)
            assert got is not None and got.overdue
            assert [e.type.value for e in got.events].count("overdue") == 3
    finally:
        a.close()
        b.close()
