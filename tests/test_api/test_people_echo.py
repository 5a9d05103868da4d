"""A password is never echoed back: no 4xx answer of /users or /session quotes it, whatever is
wrong with the body around it (a missing field, an extra one, a wrong type, a password that is
a number, too short or too long)."""

from __future__ import annotations

import pytest

from tests.support.api import ADMIN
from tests.support.people import PeopleApi

SECRET = "Sup3rSecretPw"
NUMBER = 73_519_482_066  # a password a client sent as a JSON number
LONG = "Lg" + "x" * 2000



BODIES: list[tuple[str, str, str, object]] = [
    # (method, path, the password as it appears in text, body)
    ("POST", "/api/v1/session", SECRET, {"password": SECRET}),
    ("POST", "/api/v1/session", SECRET, {"username": "olga", "password": SECRET, "remember": True}),
    ("POST", "/api/v1/session", SECRET, {"username": ["olga"], "password": SECRET}),
    ("POST", "/api/v1/session", SECRET, {"username": "x" * 200, "password": SECRET}),
    ("POST", "/api/v1/session", str(NUMBER), {"username": "olga", "password": NUMBER}),
    ("POST", "/api/v1/session", SECRET, [{"username": "olga", "password": SECRET}]),
    ("POST", "/api/v1/users", SECRET, {"username": "x1", "password": SECRET}),
    ("POST", "/api/v1/users", SECRET, {"username": "x1", "role": "boss", "password": SECRET}),
    ("POST", "/api/v1/users", SECRET, {"username": "bad name", "role": "viewer", "department": "commerce",
                                       "password": SECRET}),
    ("POST", "/api/v1/users", SECRET, {"username": "x1", "role": "viewer", "department": "nope",
                                       "password": SECRET}),
    ("POST", "/api/v1/users", "short9pw", {"username": "x1", "role": "viewer", "department": "commerce",
                                           "password": "short9pw"}),
    ("POST", "/api/v1/users", LONG[:40], {"username": "x1", "role": "viewer", "department": "commerce",
                                          "password": LONG}),
    ("POST", "/api/v1/users", str(NUMBER), {"username": "x1", "role": "viewer", "department": "commerce",
                                            "password": NUMBER}),
    ("POST", "/api/v1/users", SECRET, {"username": "olga", "role": "viewer", "department": "commerce",
                                       "password": SECRET}),  # 409: the name is taken
    ("PATCH", "/api/v1/users/olga", SECRET, {"password": SECRET, "role": "boss"}),
    ("PATCH", "/api/v1/users/olga", SECRET, {"password": SECRET, "colour": "red"}),
    ("PATCH", "/api/v1/users/olga", str(NUMBER), {"password": NUMBER}),
    ("PATCH", "/api/v1/users/olga", "short9pw", {"password": "short9pw"}),
    ("PATCH", "/api/v1/users/ghost", SECRET, {"password": SECRET}),  # 404
]


@pytest.mark.parametrize(("method", "path", "needle", "body"), BODIES)
def test_no_error_answer_quotes_the_password(sqlite_papi: PeopleApi, method: str, path: str, needle: str,
                                             body: object) -> None:
    for headers in (ADMIN, {}):  # as the admin, and (for /users: 401) as nobody
        r = sqlite_papi.client.request(method, path, json=body, headers=headers)
        assert 400 <= r.status_code < 500, r.text
        assert needle not in r.text, r.text
