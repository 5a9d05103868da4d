"""The API in-process over real parts: a StateStore on a temporary SQLite file, the real
AlertService (alerts are raised by feeding it readings, as ingest does) and an InfluxClient on
the session's InfluxDB. The district, ``Api`` and ``build_api`` are in tests/support/api.py, the
people helpers behind ``papi`` in tests/support/people.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.district import District
from service.stack import StackInfo
from store.influx import InfluxClient
from store.state import StateStore
from tests.support.api import Api, build_api, district_of
from tests.support.helpers import create_database, influx_query
from tests.support.people import PeopleApi, cheap_hashes


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    yield store
    store.close()


@pytest.fixture
def api_district(district: str) -> District:
    return district_of(district)


@pytest.fixture
def influx(stack: StackInfo, influx_db: str) -> InfluxClient:
    return InfluxClient(stack.influx_url, influx_db, None)


@pytest.fixture
def api(api_district: District, state: StateStore, influx: InfluxClient) -> Iterator[Api]:
    a = build_api(api_district, state, influx)
    yield a
    a.service.stop()


@pytest.fixture(scope="module")
def shared_api(stack: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app for a module's tests that change nothing a later test looks at (refusals, 404s)."""
    name = f"t_{uuid.uuid4().hex[:8]}"
    create_database(stack, name)
    store = StateStore(f"sqlite:///{tmp_path_factory.mktemp('state')}/state.db")
    client = InfluxClient(stack.influx_url, name, None)
    a = build_api(district_of(name), store, client)
    yield a
    a.service.stop()
    client.close()
    store.close()
    influx_query(stack, name, f'DROP DATABASE "{name}"')


@pytest.fixture
def papi(state_url: str, district: str, influx: InfluxClient, monkeypatch: pytest.MonkeyPatch
         ) -> Iterator[PeopleApi]:
    """An API with people in it (tests/support/people.py), on SQLite and PostgreSQL."""
    cheap_hashes(monkeypatch)
    store = StateStore(state_url)
    a = build_api(district_of(district), store, influx)
    p = PeopleApi(a.app, a.ctx, a.service, store)
    yield p
    p.service.stop()
    store.close()


@pytest.fixture
def sqlite_papi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PeopleApi]:
    """A people API on its own SQLite book (no servers), with the operator ``olga`` of commerce."""
    cheap_hashes(monkeypatch)
    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    a = build_api(district_of(f"p_{uuid.uuid4().hex[:8]}"), store, None)
    p = PeopleApi(a.app, a.ctx, a.service, store)
    p.add_user("olga", "operator", "commerce")
    yield p
    p.service.stop()
    store.close()
