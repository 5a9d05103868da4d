"""``StateStore``: the one handle on the state database (alert book, access, silences, outbox).

The API reads and writes through its public methods; the alerting side writes the book
through ``transaction()`` (a ``BookTx``), so an alert change, its event and the
notifications it causes commit together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from store.state.access import AccessStore
from store.state.audit import AuditStore
from store.state.book import BookReads, BookTx
from store.state.db import SqliteFile, create_state_engine, upgrade
from store.state.hazards import HazardStore
from store.state.leases import LeaseStore
from store.state.outbox import OutboxStore
from store.state.people import PeopleStore


class StateStore(BookReads, AccessStore, PeopleStore, AuditStore, HazardStore, OutboxStore, LeaseStore):
    """Opens ``url`` (``sqlite:///PATH`` or ``postgresql://...``) and migrates it to the current schema.

    Thread-safe: every method runs its own short transaction from a connection pool.
    Raises ValueError naming SAFEWATCH_STATE_URL for a URL it cannot use, and SQLAlchemy's
    OperationalError when the database cannot be reached.
    """

    def __init__(self, url: str) -> None:
        engine = create_state_engine(url)
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
        super().__init__(engine)
        self.url = url
        self.backend = engine.dialect.name  # "sqlite" | "postgresql"
        self._file = SqliteFile.of(engine)  # so /health notices the file deleted or replaced under us

    @contextmanager
    def transaction(self) -> Iterator[BookTx]:
        """A write transaction over the book; commits on a clean exit, rolls back on an exception."""
        with self._write() as s:
            yield BookTx(s)

    def ping(self) -> tuple[bool, str]:
        """(ok, detail) for /health."""
        if self._file is not None and (why := self._file.changed()):
            return False, f"sqlite: {why}"
        try:
            with self._read() as s:
                s.execute(text("SELECT 1"))
        except SQLAlchemyError as err:
            return False, f"{self.backend}: {type(err).__name__}: {str(err).splitlines()[0]}"
        return True, self.backend

    def close(self) -> None:
        """Closes pooled connections (the store must not be used afterwards)."""
        self._engine.dispose()
