"""A PostgreSQL host that stops answering costs the book writer seconds, not TCP's 15 minutes:
the engine connects with a timeout and TCP keepalives (store/state/db.py), and the resulting
OperationalError is an outage, so the signals go to the journal and the messages are acked."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from alerting.bookwriter import DB_DOWN, BookWriter
from alerting.journal import Journal
from domain.alerts import AlertKey, Signal
from domain.severity import Severity
from store.state.db import PG_CONNECT_ARGS, create_state_engine


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake and then nothing ever answers: what a
    database host looks like that hangs, or whose answers a firewall drops."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=16)  # never accept()ed
    yield int(sock.getsockname()[1])
    sock.close()


def params(engine: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    @event.listens_for(engine, "do_connect")
    def capture(dialect: Any, rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
    return seen


def test_postgresql_connections_have_time_limits_and_keepalives(silent_port: int) -> None:
    engine = create_state_engine(f"postgresql://sw@127.0.0.1:{silent_port}/safewatch")
    seen = params(engine)
    start = time.monotonic()
    with pytest.raises(OperationalError), engine.connect():
        pass
    took = time.monotonic() - start
    assert took < 10, f"a silent database host held the connect for {took:.1f}s"
    for k, v in PG_CONNECT_ARGS.items():
        assert seen[k] == v, (k, seen)
    assert issubclass(OperationalError, DB_DOWN)
    engine.dispose()


def test_a_value_in_the_url_wins_over_the_default() -> None:
    engine = create_state_engine("postgresql://sw@127.0.0.1:1/safewatch?connect_timeout=1&keepalives_idle=30")
    seen = params(engine)
    with pytest.raises(OperationalError), engine.connect():  # port 1: refused at once on loopback
        pass
    assert str(seen["connect_timeout"]) == "1" and str(seen["keepalives_idle"]) == "30"
    assert seen["keepalives_count"] == PG_CONNECT_ARGS["keepalives_count"]
    engine.dispose()


def test_sqlite_gets_none_of_it(tmp_path: Path) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path}/s.db")
    seen = params(engine)
    with engine.connect():
        pass
    assert not set(PG_CONNECT_ARGS) & set(seen)
    engine.dispose()


def test_the_book_writer_journals_when_the_database_host_is_silent(silent_port: int, tmp_path: Path) -> None:
    engine = create_state_engine(f"postgresql://sw@127.0.0.1:{silent_port}/safewatch")

    def apply(signals: Any, lease: Any) -> list[Any]:
        with engine.begin():  # what the lifecycle's transaction does first
            raise AssertionError("connected to a silent host")

    key = AlertKey("vapor", "GS-1", "d1", "vapor_lel")
    sig = Signal.fire(key, family="gas_station", kind="threshold", at_ms=int(time.time() * 1000),
                      severity=Severity.YELLOW, value=30.0, threshold=20.0)
    journal = Journal(tmp_path / "journal")
    book = BookWriter(apply, lambda changes: None, journal, lambda sigs: list(sigs), retry_s=0.2)
    book.start()
    try:
        start = time.monotonic()
        ticket = book.submit([sig])
        assert ticket.wait(15), "the ticket waited for the silent database"
        assert ticket.journaled and time.monotonic() - start < 10
        assert [e.signals for e in journal.entries()] == [(sig,)]
    finally:
        book.stop(5)
        engine.dispose()
