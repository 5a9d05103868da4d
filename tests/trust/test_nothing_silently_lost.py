"""What the alerting side cannot take is acknowledged, but never silently: a reading the engine
raises on, and a signal the book refuses for another reason than an outage, are counted and kept
in the dead letters with the reason (alerting/service.py, alerting/bookwriter.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import IntegrityError

from alerting.bookwriter import BookWriter
from alerting.engine import Engine
from alerting.lifecycle import Change
from alerting.service import AlertService
from domain import Batch, DeviceStatus, Reading
from domain.alerts import AlertKey, Signal
from domain.severity import Severity
from store.deadletters import DeadLetters
from store.state import StateStore
from tests.support.lifecycle import district


def letters(dead: DeadLetters) -> list[dict[str, Any]]:
    return [json.loads(line) for line in dead.path.read_text().splitlines()] if dead.path.exists() else []


class FlakyEngine:
    """The real engine, raising (a bug) on a vapor_lel of 666 part-way through a batch."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def process(self, batch: Batch) -> list[Signal]:
        out: list[Signal] = []
        for r in batch.readings:
            if r.values.get("vapor_lel") == 666:
                raise ZeroDivisionError("a bug")
            out += self.engine.process(Batch((r,)))
        return out + self.engine.process(Batch((), batch.statuses))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)


def reading(device: str, at: int, **values: float) -> Reading:
    return Reading("gas_station", "GS-1", device, "main", at, values)


@pytest.fixture
def sqlite(tmp_path: Path) -> Any:
    s = StateStore(f"sqlite:///{tmp_path}/state.db")
    yield s
    s.close()


def test_a_reading_the_engine_raises_on_costs_only_itself(sqlite: StateStore, tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path / "dead")
    svc = AlertService(district(), sqlite, None, None, CollectorRegistry(), dead_letters=dead)
    svc.engine = FlakyEngine(svc.engine)  # type: ignore[assignment]
    now = int(time.time() * 1000)
    batch = Batch((reading("before", now, vapor_lel=30), reading("bad", now, vapor_lel=666),
                   reading("after", now, vapor_lel=30, leak=1)),
                  (DeviceStatus("gas_station", "GS-1", "gone", False, now),))
    svc.handle_batch(batch)  # does not raise; the rest of the batch is judged
    fired = {(a.device, a.rule) for a in sqlite.list_alerts()}
    assert {("after", "vapor"), ("after", "leak")} <= fired
    sample = svc.registry.get_sample_value
    assert sample("safewatch_engine_errors_total", {"judged": "failed"}) == 1
    # "before" was judged by the pass that raised: its signal went with the exception, and the
    # engine, which took the reading in, raises nothing when judging it again. Said so, not hidden.
    assert sample("safewatch_engine_errors_total", {"judged": "again"}) == 1
    got = {d["topic"].split("/")[3]: d for d in letters(dead)}
    assert set(got) == {"bad", "before"} and {d["reason"] for d in got.values()} == {"engine_error"}
    assert "ZeroDivisionError: a bug" in got["bad"]["detail"]
    assert json.loads(got["bad"]["payload"]) == {"ts": now, "values": {"vapor_lel": 666}}
    assert got["bad"]["topic"] == "svc/gas_station/GS-1/bad/telemetry"
    assert "may be missing" in got["before"]["detail"]
    svc.handle_batch(Batch((reading("later", now + 1, vapor_lel=60),)))  # the engine goes on
    assert ("later", "vapor") in {(a.device, a.rule) for a in sqlite.list_alerts()}
    svc.stop()


def test_a_batch_the_engine_raises_on_only_once_is_judged_again_whole(sqlite: StateStore, tmp_path: Path) -> None:
    dead = DeadLetters(tmp_path / "dead")
    svc = AlertService(district(), sqlite, None, None, CollectorRegistry(), dead_letters=dead)
    real = svc.engine
    calls = 0

    class Once:
        def process(self, batch: Batch) -> list[Signal]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("a passing bug")  # before judging anything
            return real.process(batch)

    svc.engine = Once()  # type: ignore[assignment]
    now = int(time.time() * 1000)
    svc.handle_batch(Batch((reading("a", now, vapor_lel=30), reading("b", now, vapor_lel=30))))
    assert {a.device for a in sqlite.list_alerts()} == {"a", "b"}
    assert svc.registry.get_sample_value("safewatch_engine_errors_total", {"judged": "failed"}) == 0
    assert len(letters(dead)) == 2  # where it failed is unknown: each says a change may be missing
    svc.stop()


def test_a_signal_the_book_refuses_is_counted_and_dead_lettered(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    bad, good = (Signal.fire(AlertKey("vapor", "GS-1", device, "vapor_lel"), family="gas_station",
                             kind="threshold", at_ms=now, severity=Severity.YELLOW, value=30.0, threshold=20.0)
                 for device in ("raced", "ok"))
    applied: list[Signal] = []

    def apply(signals: Sequence[Signal], lease: Any) -> list[Change]:
        if bad in signals:  # another process's insert won the unique key first
            raise IntegrityError("INSERT INTO alerts ...", {}, Exception("duplicate key value"))
        applied.extend(signals)
        return []

    dead = DeadLetters(tmp_path / "dead")
    registry = CollectorRegistry()
    book = BookWriter(apply, lambda changes: None, None, lambda sigs: list(sigs), registry=registry,
                      dead_letters=dead)
    ticket = book.submit([bad, good])
    assert ticket.wait(5) and not ticket.journaled  # done: its messages are acknowledged
    assert applied == [good]
    assert registry.get_sample_value("safewatch_book_refused_signals_total") == 1
    [letter] = letters(dead)
    assert letter["reason"] == "book_refused" and letter["topic"] == "vapor/GS-1/raced/vapor_lel"
    assert "IntegrityError" in letter["detail"] and "duplicate key value" in letter["detail"]
    assert json.loads(letter["payload"])["device"] == "raced"


def test_an_over_long_value_the_book_refuses_reaches_the_dead_letters(store: StateStore, tmp_path: Path) -> None:
    if store.backend == "sqlite":
        pytest.skip("SQLite does not enforce VARCHAR lengths, so it accepts the over-long device id")
    dead = DeadLetters(tmp_path / "dead")
    svc = AlertService(district(), store, None, None, CollectorRegistry(), dead_letters=dead)
    now = int(time.time() * 1000)
    bad = Signal.fire(AlertKey("vapor", "GS-1", "x" * 500, "vapor_lel"), family="gas_station",
                      kind="threshold", at_ms=now, severity=Severity.YELLOW, value=30.0)
    svc.apply_signals([bad])
    assert svc.registry.get_sample_value("safewatch_book_refused_signals_total") == 1
    [letter] = letters(dead)
    assert letter["reason"] == "book_refused" and "DataError" in letter["detail"]
    svc.stop()
