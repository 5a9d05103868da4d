"""The bounded hand-off between the MQTT thread and the worker, and the dead-letter file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from ingest.buffer import BoundedBuffer
from store.deadletters import DeadLetters


def test_take_returns_everything_waiting_in_order() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(100, 10_000)
    b.put_many([1, 2, 3], 30)
    b.put(4, 10)
    assert (len(b), b.bytes) == (4, 40)
    assert b.take(3, 0.1) == [1, 2, 3]
    assert b.take(10, 0.1) == [4]
    assert (len(b), b.bytes) == (0, 0)
    assert b.take(10, 0.01) == []


@pytest.mark.parametrize(("max_items", "max_bytes", "first", "second"), [
    (3, 10_000, ([1, 2, 3], 30), ([4], 10)),  # full by count
    (100, 100, ([1], 90), ([2], 20)),  # full by bytes
])
def test_a_full_buffer_holds_the_producer_back(max_items: int, max_bytes: int, first: tuple[list[int], int],
                                              second: tuple[list[int], int]) -> None:
    b: BoundedBuffer[int] = BoundedBuffer(max_items, max_bytes)
    assert b.put_many(*first)
    producer = threading.Thread(target=b.put_many, args=second, daemon=True)
    producer.start()
    producer.join(0.3)
    assert producer.is_alive(), "the producer must wait, not drop or overfill"
    assert b.take(100, 0.1) == first[0]
    producer.join(5)
    assert not producer.is_alive()
    assert b.take(100, 0.1) == second[0]


def test_one_oversized_item_still_passes_an_empty_buffer() -> None:
    b: BoundedBuffer[str] = BoundedBuffer(10, 100)
    assert b.put("huge", 5_000)
    assert b.take(10, 0.1) == ["huge"]


def test_close_releases_a_blocked_producer_and_refuses_more() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(1, 100)
    b.put(1, 1)
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(b.put(2, 1)), daemon=True)
    producer.start()
    producer.join(0.2)
    b.close()
    producer.join(5)
    assert result == [False]
    assert b.take(10, 0.1) == [1]  # what was in stays takeable
    assert not b.put(3, 1)


def test_a_producer_no_longer_wanted_gives_up() -> None:
    b: BoundedBuffer[int] = BoundedBuffer(1, 100)
    b.put(1, 1)
    wanted = threading.Event()
    wanted.set()
    result: list[bool] = []
    producer = threading.Thread(target=lambda: result.append(b.put(2, 1, wanted.is_set)), daemon=True)
    producer.start()
    wanted.clear()
    producer.join(5)
    assert result == [False]


def test_dead_letters_record_reason_topic_excerpt_and_time(tmp_path: Path) -> None:
    d = DeadLetters(tmp_path / "dl", excerpt_bytes=16)
    d.add("invalid_json", "x/gas_station/S/d/telemetry", b"\xff{not json at all, and long", "bad", at_ms=0)
    d.close()
    (rec,) = [json.loads(line) for line in d.path.read_text().splitlines()]
    assert rec == {"time": "1970-01-01T00:00:00.000+00:00", "reason": "invalid_json",
                   "topic": "x/gas_station/S/d/telemetry", "detail": "bad",
                   "payload": "\ufffd{not json at al… (27 bytes)"}


def test_dead_letters_rotate_and_stay_bounded(tmp_path: Path) -> None:
    d = DeadLetters(tmp_path / "dl", max_bytes=2_000, backups=2)
    for i in range(200):
        d.add("out_of_range", f"t/{i}", b"x" * 100, f"value {i}")
    d.close()
    files = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert files == ["deadletters.jsonl", "deadletters.jsonl.1", "deadletters.jsonl.2"]
    assert all(p.stat().st_size <= 2_000 for p in (tmp_path / "dl").iterdir())
    newest = [json.loads(x) for x in d.path.read_text().splitlines()]
    assert newest[-1]["topic"] == "t/199"


def test_dead_letters_never_raise_after_close(tmp_path: Path) -> None:
    d = DeadLetters(tmp_path / "dl")
    d.close()
    d.add("bad_topic", "t", b"", "late")  # logged, not raised: ingest must go on
    assert d.written == 0
