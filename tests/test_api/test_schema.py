"""Schemathesis against /openapi.json, in-process (ASGI) over a real SQLite state store and the
session's InfluxDB: whatever the generated requests, valid or not, as the admin or as a
department, the API never answers 500 and every answer matches the documented schema.

(schemathesis.pytest.from_fixture reads ``request.node._nodeid``, which pytest 9 no longer
has, so each operation is a parametrized test running its own Hypothesis search.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)

from api.app import create_app
from api.context import ApiContext
from domain.settings import Settings
from tests.support.api import ADMIN, Api, district_of

# Every check but positive_data_acceptance, which takes any 4xx to a schema-valid request for a
# defect: here a well-formed request may still name a department or site the district lacks, a
# webhook URL that is not http(s) or a silence that already ended, and 422 is the right answer.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, missing_required_header, ignored_auth,
          unsupported_method, use_after_free, ensure_resource_availability]
STREAM = "/api/v1/stream"  # never ends by itself; test_stream.py covers it over a real server


def operation_labels() -> list[str]:
    ctx = ApiContext(district_of("schema"), Settings(), "unused", CollectorRegistry(), lambda: ("ok", {}))
    paths = create_app(ctx).openapi()["paths"]
    return [f"{method.upper()} {path}" for path, ops in paths.items() for method in ops if path != STREAM]


@pytest.fixture(scope="module")
def api_schema(shared_api: Api) -> schemathesis.BaseSchema:
    # alerts to act on (ids 1 and 2), so ack/close reach the state machine and not only 404
    shared_api.fire("GS-001", "vapor_lel", 60.0)
    shared_api.fire("UG-001", "o2_pct", 19.0)
    return schemathesis.openapi.from_asgi("/openapi.json", shared_api.app)


@pytest.mark.parametrize("label", operation_labels())
def test_no_server_errors_and_documented_responses(api_schema: schemathesis.BaseSchema, shared_api: Api,
                                                   label: str):
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, label
    callers = (ADMIN, shared_api.as_("commerce"))
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case[Any]) -> None:
        # A negative case may leave out the token on purpose: then it must be refused, not helped.
        negated = api_schema.is_security_param_negated(case)
        for headers in ({},) if negated else callers:
            case.call_and_validate(headers=headers, checks=CHECKS)

    check()
