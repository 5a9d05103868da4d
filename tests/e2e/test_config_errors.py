"""``safewatch serve`` refuses a bad config with exit code 2 and one line naming the file, the
path inside it and what is wrong, before it connects to anything (contract sections 1 and 2).

Each case is its own test, but the runs happen together in one module fixture, as the cases are
independent. ``serve`` imports its whole stack before it reads the config (about 2.5 s of CPU
here), so the four kinds of mistake the contract names, plus unreadable files and a missing
token, go through ``serve``; the further table rows go through ``safewatch check``, the same
loader without the start-up cost.
"""

from __future__ import annotations

import copy
import select
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e.district import district_config, new_name, write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN, clean_env, safewatch_argv

Config = dict[str, Any]


def _site(cfg: Config, sid: str) -> dict[str, Any]:
    site: dict[str, Any] = next(s for s in cfg["sites"] if s["id"] == sid)
    return site


def _rule(cfg: Config, rid: str) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for r in cfg["rules"] if r["id"] == rid)
    return rule


# (case, change to the valid config, words the message must hold besides the file name)
SERVE_BAD: list[tuple[str, Callable[[Config], object], list[str]]] = [
    ("unknown key", lambda c: _site(c, "GS-RD").update(colour="red"), ["sites", "colour"]),
    ("unknown street", lambda c: _site(c, "GS-RD").update(street="nowhere"), ["sites", "street", "nowhere"]),
    ("metric the family lacks", lambda c: _rule(c, "vapor-level").update(metric="occupancy"),
     ["rules", "occupancy"]),
    ("missing capacity", lambda c: _site(c, "CV-1").pop("capacity"), ["sites", "capacity"]),
]
CHECK_BAD: list[tuple[str, Callable[[Config], object], list[str]]] = [
    ("unknown sector", lambda c: _site(c, "GS-RD").update(sector="police"), ["sites", "sector", "police"]),
    ("unknown family", lambda c: _site(c, "GS-RD").update(family="airport"), ["sites", "family", "gas_station"]),
    ("malformed duration", lambda c: _rule(c, "vapor-level").update({"for": "soon"}), ["rules", "for", "soon"]),
    ("unknown severity", lambda c: _rule(c, "co-level").update(levels={"purple": 5}), ["rules", "purple"]),
    ("forecast names an unknown rule", lambda c: _rule(c, "pressure-rising")["forecast"].update(rule="nope"),
     ["rules", "forecast", "nope"]),
    ("unknown notify department", lambda c: c["routing"][1].update(notify=["nobody"]), ["routing", "nobody"]),
    ("unknown escalation department", lambda c: c["escalation"][0].update(notify=["nobody"]),
     ["escalation", "nobody"]),
]
# (case, file text): refused for its YAML, before any schema check
UNPARSEABLE = [("unclosed flow sequence", "district: [e2e\n"), ("not a mapping", "- just\n- a list\n")]


@dataclass
class Case:
    config: Path
    words: list[str]
    env: dict[str, str] = field(default_factory=dict)
    command: str = "serve"
    proc: subprocess.CompletedProcess[str] | None = None
    connected: bool = False  # whether serve reached for the MQTT or InfluxDB address


def run(case: Case) -> None:
    """Runs serve with its MQTT and InfluxDB URLs on listeners that accept nothing: a connection
    attempt stays in their backlog for us to see."""
    workdir = case.config.parent
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    try:
        mqtt_port, influx_port = (s.getsockname()[1] for s in socks)
        settings = {"admin_token": ADMIN_TOKEN, "state_url": f"sqlite:///{workdir / 'state.db'}",
                    "data_dir": str(workdir / "data"), "api_port": "0",
                    "mqtt_url": f"mqtt://127.0.0.1:{mqtt_port}",
                    "influx_url": f"http://127.0.0.1:{influx_port}"} | case.env
        case.proc = subprocess.run(safewatch_argv(case.command, "--config", str(case.config)),
                                   env=clean_env(**settings), cwd=workdir, capture_output=True, text=True,
                                   timeout=90, stdin=subprocess.DEVNULL)
        case.connected = bool(select.select(socks, [], [], 0)[0])
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def workdir(name: str) -> Path:
        return tmp_path_factory.mktemp(name.replace(" ", "_"))

    for command, table in (("serve", SERVE_BAD), ("check", CHECK_BAD)):
        for name, change, words in table:
            cfg = copy.deepcopy(district_config(new_name()))
            change(cfg)
            path = write_config(workdir(name) / "bad.yaml", cfg)
            cases[name] = Case(path, [str(path), *words], command=command)
    for name, text in UNPARSEABLE:
        path = workdir(name) / "broken.yaml"
        path.write_text(text)
        cases[name] = Case(path, [str(path)])
    missing = workdir("missing") / "absent.yaml"
    cases["missing file"] = Case(missing, [str(missing)])
    ok = write_config(workdir("no token") / "ok.yaml", district_config(new_name()))
    cases["no admin token"] = Case(ok, ["SAFEWATCH_ADMIN_TOKEN"], {"admin_token": ""})
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(run, cases.values()))
    return cases


CASES = [b[0] for b in SERVE_BAD + CHECK_BAD] + [u[0] for u in UNPARSEABLE] + ["missing file", "no admin token"]


@pytest.mark.parametrize("case", CASES)
def test_refused_with_exit_2_and_one_line_before_connecting(refusals: dict[str, Case], case: str) -> None:
    c = refusals[case]
    assert c.proc is not None
    lines = [ln for ln in (c.proc.stderr + c.proc.stdout).splitlines() if ln.strip()]
    assert c.proc.returncode == 2, f"exit {c.proc.returncode}, output: {lines}"
    assert len(lines) == 1, f"expected one line, got {lines}"
    for word in c.words:
        assert word.lower() in lines[0].lower(), f"{word!r} not in {lines[0]!r}"
    assert not c.connected, "serve connected to MQTT or InfluxDB before refusing"


def test_the_valid_config_passes_check(tmp_path: Path) -> None:
    """The control for the table: unchanged, the same config is accepted."""
    config = write_config(tmp_path / "ok.yaml", district_config(new_name()))
    proc = subprocess.run(safewatch_argv("check", "--config", str(config)), env=clean_env(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
