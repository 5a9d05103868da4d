"""The in-process broadcaster behind the SSE stream: order, overflow, close, asyncio consumers."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from domain.alerts import Alert, AlertEvent, AlertState, EventType
from domain.severity import Severity
from notify import Broadcaster, Notice, alert_notice

NOW = datetime(2025, 1, 1, tzinfo=UTC)
ALERT = Alert(id="1", rule="r", kind="threshold", site="S", family="gas_station", device="d", metric="m",
              severity=Severity.RED, state=AlertState.OPEN, value=1.0, threshold=0.5, message="",
              started_at=NOW, updated_at=NOW)


def notice(i: int) -> Notice:
    return alert_notice(AlertEvent(i, "1", EventType.FIRED, NOW, Severity.RED), ALERT, UTC)


def test_every_subscriber_gets_every_notice_in_order() -> None:
    b = Broadcaster()
    s1, s2 = b.subscribe(), b.subscribe()
    for i in range(5):
        b.publish(notice(i))
    assert [s1.get(0.1).event_id for _ in range(5)] == list(range(5))  # type: ignore[union-attr]
    assert [s2.get(0.1).event_id for _ in range(5)] == list(range(5))  # type: ignore[union-attr]
    assert s1.get(0.01) is None
    s1.close()
    assert b.subscriber_count == 1
    b.publish(notice(9))
    assert s1.get(0.01) is None and s2.get(0.1).event_id == 9  # type: ignore[union-attr]


def test_a_slow_subscriber_overflows_without_blocking_the_publisher() -> None:
    b = Broadcaster()
    slow, fine = b.subscribe(maxsize=3), b.subscribe(maxsize=100)
    start = time.monotonic()
    for i in range(10):
        b.publish(notice(i))
    assert time.monotonic() - start < 0.5
    assert slow.overflowed and slow.finished and b.subscriber_count == 1
    assert [n.event_id for n in slow] == [0, 1, 2]  # what it held; then resume from the book
    assert not fine.overflowed and len([fine.get(0.1) for _ in range(10)]) == 10


def test_close_wakes_a_waiting_thread() -> None:
    b = Broadcaster()
    sub = b.subscribe()
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(sub.get(timeout=10)))
    t.start()
    time.sleep(0.1)
    b.close()
    t.join(2)
    assert not t.is_alive() and got == [None] and sub.closed


def test_async_subscriber_is_woken_from_another_thread() -> None:
    async def main() -> list[int | str]:
        b = Broadcaster()
        sub = b.subscribe_async()
        def publish() -> None:
            for i in range(3):
                b.publish(notice(i))

        threading.Timer(0.1, publish).start()
        ids = []
        for _ in range(3):
            n = await sub.get_async(timeout=5)
            assert n is not None
            ids.append(n.event_id)
        assert await sub.get_async(timeout=0.05) is None  # a timeout, not an end
        threading.Timer(0.05, b.close).start()
        assert [n async for n in sub] == []
        return ids

    assert asyncio.run(main()) == [0, 1, 2]


def test_async_subscriber_of_a_finished_loop_is_dropped() -> None:
    b = Broadcaster()

    async def make() -> None:
        b.subscribe_async()

    asyncio.run(make())  # the loop closes with the subscriber still registered
    b.publish(notice(1))  # must neither raise nor keep it
    assert b.subscriber_count == 0
