"""Shared fixtures: one real Mosquitto + InfluxDB per test session, unique names per test.

Helpers (InfluxDB queries, mosquitto_pub/sub wrappers, polling) are in tests/support/helpers.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from service.stack import StackInfo, stack_down, stack_up
from tests.support.helpers import create_database, influx_query

# The state database fixtures (state_url/make_store/store, pg_server, pg_database) for every test.
pytest_plugins = ["tests.support.state"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that touches the real servers is an integration test, so `-m "not integration"`
    # gives a quick run without them.
    for item in items:
        if "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """The session's Mosquitto and InfluxDB on free ports, in a fresh temporary directory.

    Shared by all tests: use the `district` fixture for topics and databases. A test that
    stops a server (stop_influxd/stop_mosquitto) must start it again with start_influxd/
    start_mosquitto on the same data_dir (same port, same data); the pids in this StackInfo
    are then stale, stack_status(stack.data_dir) has the current ones.
    """
    data_dir = tmp_path_factory.mktemp("stack")
    try:
        # die_with_parent: a pytest killed with SIGKILL takes the servers down with it.
        yield stack_up(data_dir, die_with_parent=True)
    finally:
        stack_down(data_dir)


@pytest.fixture
def district() -> str:
    """A unique lowercase district name (MQTT topic prefix, InfluxDB database) for one test."""
    return f"t_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def unique_topic_prefix(district: str) -> str:
    return district


@pytest.fixture
def influx_db(stack: StackInfo, district: str) -> Iterator[str]:
    """The test's district database, created empty and dropped afterwards."""
    create_database(stack, district)
    yield district
    influx_query(stack, district, f'DROP DATABASE "{district}"')
