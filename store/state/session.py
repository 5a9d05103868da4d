"""The sessions every part of the StateStore uses: reads deferred, writes with the lock up front."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from domain.clock import now_ms
from store.state.db import WRITE

__all__ = ["SessionSource", "now_ms"]  # now_ms: the domain's clock, where the store's modules import it


class SessionSource:
    """Holds the engine and hands out short transactions; the mixins of StateStore build on it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._reads = sessionmaker(bind=engine, expire_on_commit=False)
        self._writes = sessionmaker(bind=engine.execution_options(**WRITE), expire_on_commit=False)

    @property
    def engine(self) -> Engine:
        return self._engine

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._reads() as session, session.begin():
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One transaction: committed on a clean exit, rolled back on an exception."""
        with self._writes() as session, session.begin():
            yield session
