"""State database fixtures shared suite-wide (registered by ``pytest_plugins`` in tests/conftest.py).

``state_url`` runs a test on SQLite (a file in tmp_path) and on PostgreSQL: a schema of its own
in the ``test`` database of the PostgreSQL the suite starts itself (``pg_server``, once per
session, only when a test asks for it). ``pg_database`` gives a whole database of its own, for
tests that hand the URL to a ``serve`` process or drop the database under it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from store.state import StateStore
from tests.support.pg import PgServer

SCHEMA_DB = "test"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL (initdb + postgres on a free port); stopped by pid, its files removed."""
    server = PgServer()
    try:
        server.start()
        server.create_database(SCHEMA_DB)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """A fresh database on the session's server; its URL. Dropped afterwards (if the server is up)."""
    name = f"sw_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    if pg_server.pid is not None:
        pg_server.drop_database(name)


@pytest.fixture
def pg_store(pg_database: str, pg_server: PgServer) -> Iterator[StateStore]:
    """A store on a database of its own, for tests that stop the server under it: restarted at the end."""
    store = StateStore(pg_database)
    try:
        yield store
    finally:
        pg_server.start()  # a test that failed while it was down
        store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    dsn = server.dsn(SCHEMA_DB)
    schema = f"sw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{dsn}?options=-csearch_path%3D{schema}"
    finally:
        if server.pid is not None:
            with psycopg.connect(dsn, autocommit=True) as conn:
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
