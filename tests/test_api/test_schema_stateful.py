"""Schemathesis, stateful: sequences of calls linked by what earlier answers returned (a created
subscription's id fed to its DELETE, an alert id to its ack, close and GET), links inferred by
schemathesis' dependency analysis of /openapi.json. As the admin and as a department; whatever
the sequence, no answer is a server error and every answer matches the documented schema."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.support.api import ADMIN, Api

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
STREAM = "/api/v1/stream"  # never ends by itself


@pytest.mark.parametrize("caller", ["admin", "commerce"])
def test_call_sequences_never_give_a_server_error(shared_api: Api, caller: str) -> None:
    shared_api.fire("GS-001", "vapor_lel", 60.0)
    shared_api.fire("UG-001", "o2_pct", 19.0)
    headers = ADMIN if caller == "admin" else shared_api.as_(caller)
    schema = schemathesis.openapi.from_asgi("/openapi.json", shared_api.app).exclude(path=STREAM)
    base: Any = schema.as_state_machine()  # infers the links
    assert schema.statistic.transitions.total >= 20  # so this is a stateful run, not single calls

    class Sequences(base):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: schemathesis.Case[Any],
                              additional_checks: Any = None, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    Sequences.run(settings=settings(max_examples=40, stateful_step_count=8, deadline=None, database=None,
                                    suppress_health_check=list(HealthCheck)))
