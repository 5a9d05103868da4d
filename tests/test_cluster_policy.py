"""The state database of several machines (docs/deploy.md: a multi-host libpq URL naming the primary
and its standby) is never a webhook target, whichever of its hosts a webhook names."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from domain.settings import Settings
from notify.policy import Endpoint, TargetPolicy, TargetRefused, state_endpoints

NAMES = {"pg1.district.internal": ["10.20.0.11"], "pg2.district.internal": ["10.20.0.12"],
         "hooks.example": ["203.0.113.7"]}


def _resolve(host: str, port: int) -> Sequence[str]:
    if host not in NAMES:
        raise OSError(f"{host}: unknown name")
    return NAMES[host]


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://sw:pw@/safewatch?host=pg1.district.internal:5432&host=pg2.district.internal:5433"
     "&target_session_attrs=read-write", [("pg1.district.internal", 5432), ("pg2.district.internal", 5433)]),
    ("postgresql://sw@/safewatch?host=pg1,pg2&port=5432,6432", [("pg1", 5432), ("pg2", 6432)]),
    ("postgresql://sw@/safewatch?host=pg1,pg2&port=6432", [("pg1", 6432), ("pg2", 6432)]),
    ("postgresql://sw@/safewatch?host=[fd00::5]:5433&hostaddr=10.20.0.13", [("fd00::5", 5433), ("10.20.0.13", 5432)]),
    ("postgresql+psycopg://sw@db.internal/safewatch", [("db.internal", 5432)]),
    ("postgresql://sw@/safewatch?host=/var/run/postgresql", []),  # a Unix socket: no network target
    ("sqlite:////var/lib/safewatch/state.db", []),
])
def test_every_host_of_the_state_url_is_an_own_endpoint(url: str, expected: list[tuple[str, int]]) -> None:
    assert state_endpoints(url) == [Endpoint("the state database", h, p) for h, p in expected]


def test_a_webhook_to_the_standby_of_a_multi_host_state_url_is_refused() -> None:
    settings = Settings(state_url="postgresql://sw:pw@/safewatch?host=pg1.district.internal:5432"
                                  "&host=pg2.district.internal:5432&target_session_attrs=read-write")
    policy = TargetPolicy.from_settings(settings, "d", resolver=_resolve)
    for url in ("http://pg2.district.internal:5432/", "http://10.20.0.11:5432/x"):
        with pytest.raises(TargetRefused, match="the state database"):
            policy.check_url(url)
    assert policy.check_url("https://hooks.example/alerts").address == "203.0.113.7"
