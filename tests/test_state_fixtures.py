"""State database fixtures shared by the alert book, lifecycle, escalation and delivery tests.

``state_url`` runs a test on SQLite (a file in tmp_path) and on PostgreSQL (a schema of its
own in the local ``test`` database, dropped afterwards). The PostgreSQL variant is skipped,
saying why, only when no server answers at 127.0.0.1:5432.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from store.state import StateStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_reason() -> str | None:
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3):
            return None
    except psycopg.Error as err:
        return f"PostgreSQL not reachable at {PG_DSN}: {str(err).strip().splitlines()[0]}"


_PG_SKIP = _pg_reason()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    if _PG_SKIP:
        pytest.skip(_PG_SKIP)
    schema = f"sw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def make_store(state_url: str) -> Iterator[Callable[[], StateStore]]:
    """Opens StateStores on the test's database (several = several processes); closes them after."""
    opened: list[StateStore] = []

    def make() -> StateStore:
        s = StateStore(state_url)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[[], StateStore]) -> StateStore:
    return make_store()
