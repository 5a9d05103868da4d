"""``safewatch users add|list|disable|passwd`` through the real console script, on the state
database the API then reads (SQLite and PostgreSQL), audited as ``cli:{OS user}``."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

from store.state import StateStore
from tests.support.api import DISTRICT_YAML

PASSWORD = "from stdin, long"


def users(state_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service.cli", "users", *args, "--state-url", state_url],
                          input=stdin, capture_output=True, text=True, timeout=120)


def test_users_cli_manages_accounts_the_api_honours(state_url: str, tmp_path: Path) -> None:
    config = tmp_path / "district.yaml"
    config.write_text(DISTRICT_YAML.format(name="cli_town"), encoding="utf-8")
    c = str(config)
    r = users(state_url, "add", "--config", c, "olga", "--role", "operator", "--department", "commerce",
              "--password-stdin", stdin=PASSWORD + "\n")
    assert (r.returncode, r.stdout.strip()) == (0, "created olga (operator)"), r.stderr
    r = users(state_url, "add", "--config", c, "sam", "--role", "site", "--sites", "GS-001,UG-001")
    assert r.returncode == 0 and "password: " in r.stdout
    generated = r.stdout.strip().rsplit("password: ", 1)[1]
    assert len(generated) >= 10
    for bad, message in ((["--role", "viewer"], "--department: a viewer needs one"),
                         (["--role", "site", "--sites", "XX-1"], "--sites: 'XX-1' is not a site"),
                         (["--role", "viewer", "--department", "nope"], "--department='nope'")):
        r = users(state_url, "add", "--config", c, "bad", *bad)
        assert r.returncode == 2 and message in r.stderr and c in r.stderr, r.stderr
    r = users(state_url, "add", "--config", c, "shorty", "--role", "admin", "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "at least 10 characters" in r.stderr and "short" not in r.stdout
    r = users(state_url, "list", "--config", c)
    assert r.stdout.splitlines() == ["olga\toperator\tcommerce\tactive", "sam\tsite\tGS-001,UG-001\tactive"]
    store = StateStore(state_url)
    try:
        assert store.sign_in("olga", PASSWORD).user is not None
        assert store.sign_in("sam", generated).user is not None
        r = users(state_url, "passwd", "olga", "--password-stdin", stdin="another long one\n")
        assert r.returncode == 0, r.stderr
        assert store.sign_in("olga", PASSWORD).user is None
        assert store.sign_in("olga", "another long one").user is not None
        assert users(state_url, "disable", "olga").returncode == 0
        assert store.sign_in("olga", "another long one").reason == "disabled"
        assert users(state_url, "disable", "nobody").returncode == 1
        cli = f"cli:{getpass.getuser()}"
        trail = [(e.actor, e.role, e.action, e.target, e.detail) for e in store.list_audit(actor=cli)]
        assert trail == [
            (cli, "admin", "user.update", "user:olga", "disabled"),
            (cli, "admin", "user.update", "user:olga", "password changed"),
            (cli, "admin", "user.create", "user:sam", "role site, department -, sites GS-001,UG-001"),
            (cli, "admin", "user.create", "user:olga", "role operator, department commerce, sites -"),
        ]
    finally:
        store.close()
