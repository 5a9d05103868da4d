"""``safewatch demo``: the whole system on one machine, with incidents, in a live terminal view.

It starts the local stack (unless it runs already), ``safewatch serve`` as a child process
with a generated admin token, and the simulated district in this process at real speed
(the deadman rule measures silence against the server's wall clock, so a fast clock would
make every device look silent). A sequence of incidents follows, ``vapor-leak`` first so an
alert shows within a minute. Alert events are read from the MQTT topics ``serve`` publishes
them on (``{district}/alerts/#``, hazards under ``{district}/hazards/#``), readings per second from
``/metrics``. Ctrl-C or ``--duration`` stops everything the demo started, and only that.

The config's supervision timings are days (deadlines, overdue steps 0s/1d/7d), so the demo hands
serve a copy with minutes instead (``demo_config``: deadlines and overdue steps only, in memory,
written to the demo's directory; the config file itself is never changed): a hazard is listed,
goes overdue and climbs every step of the chain within a few minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from domain.clock import now_ms as wall_ms  # the one clock (``now_ms`` names a parameter here)
from domain.config import ConfigError
from domain.district import District, load_district, parse_district
from domain.durations import format_duration
from service.demo_accounts import create_accounts
from service.demo_view import Board, note, watch
from service.simulate import stop_on_sigterm
from service.stack import (
    NAMES,
    StackError,
    StackInfo,
    free_port,
    port_in_use,
    stack_status,
    stack_up,
    stop_process,
    tie_to_parent,
)
from simulators.fleet import SimOptions, Simulation, SimulationError
from simulators.scenarios import Scenario, ScenarioContext, ScenarioError, parse_scenario
from simulators.scenarios.operations import NightResidency
from simulators.scenarios.supervision import play_in_background
from simulators.tap import Tap
from transport.mqtt import MqttError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "xicheng.yaml"
# (scenario, simulated seconds after the start); each on its own site.
SEQUENCE = (("vapor-leak", 0), ("device-silent", 45), ("bad-payloads", 75), ("crowd-surge", 120),
            ("night-residency", 150), ("co-buildup", 240), ("tank-overpressure", 360), ("flooding", 480))
# Supervision in minutes, not days: hazards listed from alerts are due in 2 (major) or 3 minutes
# (general: the self-report's plan promises a minute less, still ahead), and step i of the overdue
# chain reports i minutes past the deadline.
DEMO_DEADLINES = {"major": "2m", "general": "3m"}
DEMO_STEP_S = 60.0
HAZARDS_AFTER_S = 10.0  # the enterprises' hazard scenarios start this long into the demo
DEMO_LIMIT_S = 10.0  # overdue-climb's promised time limit: overdue within half a minute of that


class DemoError(Exception):
    """The demo cannot go on; the message says what failed and where to look."""


@dataclass
class Serve:
    """``safewatch serve`` as a child process; stopped by its pid."""

    config: Path
    demo_dir: Path
    stack: StackInfo
    token: str
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.demo_dir / "serve.log"

    def start(self, timeout: float = 90.0) -> None:
        env = os.environ | {
            "SAFEWATCH_MQTT_URL": self.stack.mqtt_url, "SAFEWATCH_INFLUX_URL": self.stack.influx_url,
            "SAFEWATCH_STATE_URL": f"sqlite:///{self.demo_dir / 'state.db'}",
            "SAFEWATCH_DATA_DIR": str(self.demo_dir / "data"), "SAFEWATCH_ADMIN_TOKEN": self.token,
            "SAFEWATCH_API_HOST": "127.0.0.1", "SAFEWATCH_API_PORT": str(self.port),
            # Everything runs on this machine: webhook receivers someone tries the demo with are
            # on loopback too (the stack's own ports stay refused whatever this says).
            "SAFEWATCH_WEBHOOK_ALLOW": os.environ.get("SAFEWATCH_WEBHOOK_ALLOW") or "127.0.0.1,::1,localhost",
        }
        env.pop("SAFEWATCH_INFLUX_DB", None)  # the demo's own InfluxDB: the district's database
        argv = [sys.executable, "-m", "service.cli", "serve", "--config", str(self.config), "--dev"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C is ours
                                         preexec_fn=tie_to_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
                raise DemoError(f"safewatch serve exited with code {self.proc.returncode}; end of {self.log}:\n{tail}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.5)
        raise DemoError(f"safewatch serve did not report healthy at {self.url}/health within {timeout:g}s; "
                        f"see {self.log}")

    def check(self) -> None:
        """Raises DemoError once serve has exited: the view would show a frozen board."""
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(f"safewatch serve exited with code {self.proc.returncode}; see {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # serve drains on SIGTERM
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10.0)


def demo_scenarios(district: District, now_ms: int | None = None) -> list[Scenario]:
    """The incident sequence, each at its own site; night-residency only inside its night hours."""
    now_ms = wall_ms() if now_ms is None else now_ms
    ctx, used, out = ScenarioContext(district, seed=1), set[str](), []
    for name, start in SEQUENCE:
        try:
            sc = parse_scenario(f"{name}@{start}s", ctx, avoid=used)
        except ScenarioError:
            continue  # the config lacks that family: skip the incident
        if isinstance(sc, NightResidency) and sc.site_offset_ms(now_ms) != 0:
            continue  # outside the night window it would need a shifted clock; see docs/scenarios.md
        used.add(sc.site.id)
        out.append(sc)
    return out


def demo_config(district: District, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (the config as loaded) with the demo's supervision timings: the deadlines of
    ``DEMO_DEADLINES`` and the district's overdue chain (its own steps, or the default ones) with
    step i ``i × DEMO_STEP_S`` past the deadline. Everything else, who is notified included, stays."""
    out = copy.deepcopy(data)
    chain = district.config.supervision.overdue_chain(district.config.departments)
    sup = out.setdefault("supervision", {}) or {}
    out["supervision"] = sup
    sup["deadlines"] = dict(DEMO_DEADLINES)
    sup["overdue"] = [{"after": format_duration(i * DEMO_STEP_S), "notify": list(step.notify)}
                      for i, step in enumerate(chain)]
    return out


def _demo_district(config: Path, demo_dir: Path) -> tuple[District, Path]:
    """The district with the demo's timings, and the copy of the config serve is started with."""
    district = load_district(config)  # named errors (ConfigError) for the file as the user wrote it
    data = demo_config(district, yaml.safe_load(config.read_text(encoding="utf-8")))
    demo_dir.mkdir(parents=True, exist_ok=True)
    path = demo_dir / "config.yaml"
    path.write_text(f"# {config} with the demo's supervision timings (service/demo.py, demo_config)\n"
                    + yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    steps = ", ".join(str(step["after"]) for step in data["supervision"]["overdue"])
    print(f"supervision: deadlines {DEMO_DEADLINES['general']} general, {DEMO_DEADLINES['major']} major, overdue "
          f"steps {steps} past the deadline, for the demo ({path}; {config} unchanged)", flush=True)
    return parse_district(data, str(path)), path


def run_demo(args: argparse.Namespace) -> int:
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    demo_dir = Path(args.data or "./var/demo").expanduser().resolve()
    plain = args.plain or not sys.stdout.isatty()
    console = Console(highlight=False)
    try:
        load_district(config)
    except ConfigError as err:
        print(f"safewatch demo: {err}", file=sys.stderr)
        return 2
    if args.duration is not None and not args.duration > 0:
        print(f"safewatch demo: --duration {args.duration:g}: must be a positive number", file=sys.stderr)
        return 2
    # The device-silent incident drops a connection on purpose; the view reports it, not paho's log.
    logging.getLogger("transport.mqtt").setLevel(logging.ERROR)
    stack_dir = demo_dir / "stack"
    started: list[str] = []  # the stack processes this demo starts, and so stops
    serve: Serve | None = None
    sim: Simulation | None = None
    tap: Tap | None = None
    worker: threading.Thread | None = None
    stop = threading.Event()
    try:
        district, serve_config = _demo_district(config, demo_dir)
        before = stack_status(stack_dir)
        started = [name for name in NAMES if not (isinstance(p := before[name], dict) and p["running"])]
        stack = stack_up(stack_dir, die_with_parent=True)  # a killed demo takes what it started along
        print(f"stack: MQTT {stack.mqtt_url}, InfluxDB {stack.influx_url} ({stack_dir})", flush=True)
        board = Board(district)
        tap = Tap(stack.mqtt_url, [f"{district.name}/alerts/#", f"{district.name}/hazards/#"],
                  on_message=board.on_message).connect()
        notes: deque[str] = deque(maxlen=1)
        sim = Simulation(district, demo_scenarios(district), SimOptions(mqtt_url=stack.mqtt_url, seed=1),
                         on_note=functools.partial(note, notes, plain))
        sim.connect()  # before serve: their retained "online" replaces any "offline" will of an earlier run
        _fresh_book(demo_dir)
        port = free_port() if port_in_use(8080) else 8080
        serve = Serve(serve_config, demo_dir, stack, secrets.token_urlsafe(24), port)
        print(f"serve: starting on {serve.url} (log {serve.log})", flush=True)
        serve.start()
        print(f"serve: pid {serve.proc.pid if serve.proc else '?'} healthy", flush=True)
        print(f"API {serve.url}   docs {serve.url}/docs   admin token {serve.token}", flush=True)
        _console_accounts(serve, district, [sc.site.id for sc in sim.scenarios])
        for sc in sim.scenarios:
            print(f"incident at +{sc.start_s:g} s: {sc.label} ({sc.site.name}): {sc.summary}", flush=True)
        play_in_background(serve.url, serve.token, district, [sc.site.id for sc in sim.scenarios], stop,
                           functools.partial(note, notes, plain),  # hazards listed, reported, overdue
                           delay_s=HAZARDS_AFTER_S, limit_s=DEMO_LIMIT_S)
        worker = threading.Thread(target=sim.run, args=(stop,), name="simulation", daemon=True)
        worker.start()
        with stop_on_sigterm(stop):
            watch(board, sim, notes, stop, api=serve.url, token=serve.token, duration=args.duration,
                  plain=plain, console=console, check=serve.check)
    except (StackError, DemoError, SimulationError, MqttError, OSError) as err:
        print(f"safewatch demo: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if worker is not None:
            worker.join(10.0)  # the devices switch off only once the loop has stopped using them
        _shut_down(sim, tap, serve, stack_dir, started)
    return 0


def _console_accounts(serve: Serve, district: District, incident_sites: list[str]) -> None:
    """Prints the console's address and the accounts made for it, one per role."""
    try:
        accounts = create_accounts(serve.url, serve.token, district, incident_sites)
    except (RuntimeError, httpx.HTTPError) as err:  # the demo still runs; the API and its token work
        print(f"safewatch demo: no console accounts: {err}", file=sys.stderr)
        return
    print(f"console {serve.url}/   sign in as one of:", flush=True)
    for account in accounts:
        print(account.line(), flush=True)


def _fresh_book(demo_dir: Path) -> None:
    """Each demo starts with an empty alert book; an earlier run's is kept under previous/.

    An alert left open by an interrupted run would otherwise swallow the same incident's
    ``fired`` event this time (one alert per rule, site, device and metric).
    """
    files = [p for p in demo_dir.glob("state.db*") if p.is_file()]  # with SQLite's -wal and -shm
    if not files:
        return
    keep = demo_dir / "previous" / time.strftime("%Y%m%d-%H%M%S")
    keep.mkdir(parents=True, exist_ok=True)
    for path in files:
        path.rename(keep / path.name)
    print(f"the previous run's alert book is kept in {keep}", flush=True)


def _shut_down(sim: Simulation | None, tap: Tap | None, serve: Serve | None, stack_dir: Path,
               started: list[str]) -> None:
    """Stop, in order, everything this demo started; each step runs even if another failed.

    serve stops before the devices, which then leave without an offline status: ending the
    demo is not 76 devices failing, and the next demo's serve should not start with their news.
    """
    steps: list[tuple[str, Callable[[], object]]] = []
    steps += [("serve", serve.stop)] if serve else []
    steps += [("simulation", functools.partial(sim.close, say_offline=False))] if sim else []
    steps += [("alert feed", tap.close)] if tap else []
    steps += [(name, functools.partial(stop_process, name, stack_dir)) for name in started]
    for what, step in steps:
        try:
            step()
        except Exception as err:  # one failed step must not leave the others running
            print(f"safewatch demo: stopping {what}: {err}", file=sys.stderr)
    if sim is not None:
        print(sim.summary().line(), flush=True)
    print("demo stopped" + (f"; stopped {', '.join(started)} in {stack_dir}" if started else ""), flush=True)
