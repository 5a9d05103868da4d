"""``safewatch demo``: the whole system on one machine, with incidents, in a live terminal view.

It starts the local stack (unless it runs already), ``safewatch serve`` as a child process
with a generated admin token, and the simulated district in this process at real speed
(the deadman rule measures silence against the server's wall clock, so a fast clock would
make every device look silent). A sequence of incidents follows, ``vapor-leak`` first so an
alert shows within a minute. Alert events are read from the MQTT topics ``serve`` publishes
them on (``{district}/alerts/#``), readings per second from ``/metrics``. Ctrl-C or
``--duration`` stops everything the demo started, and only that.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from domain.config import ConfigError
from domain.district import District, load_district
from domain.severity import Severity
from service.simulate import stop_on_sigterm
from service.stack import NAMES, StackError, StackInfo, free_port, stack_status, stack_up, stop_process
from simulators.fleet import SimOptions, Simulation, SimulationError
from simulators.scenarios import Scenario, ScenarioContext, ScenarioError, parse_scenario
from simulators.scenarios.operations import NightResidency
from simulators.tap import Tap
from transport.mqtt import Message, MqttError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "configs" / "xicheng.yaml"
# (scenario, simulated seconds after the start); each on its own site.
SEQUENCE = (("vapor-leak", 0), ("device-silent", 45), ("bad-payloads", 75), ("crowd-surge", 120),
            ("night-residency", 150), ("co-buildup", 240), ("tank-overpressure", 360), ("flooding", 480))
SEVERITY_STYLE = {"red": "bold red", "orange": "bold dark_orange", "yellow": "yellow", "blue": "blue"}
OPEN_STATES = ("open", "acknowledged")


class DemoError(Exception):
    """The demo cannot go on; the message says what failed and where to look."""


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a killed demo takes serve along


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
        }
        env.pop("SAFEWATCH_INFLUX_DB", None)  # the demo's own InfluxDB: the district's database
        argv = [sys.executable, "-m", "service.cli", "serve", "--config", str(self.config), "--dev"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C is ours
                                         preexec_fn=_die_with_parent)
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

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # serve drains on SIGTERM
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10.0)


def readings_counters(metrics_text: str) -> dict[str, float]:
    """``accepted`` and ``rejected`` readings from Prometheus text (summed over their labels)."""
    sums = {"accepted": 0.0, "rejected": 0.0}
    for line in metrics_text.splitlines():
        for key in sums:
            if line.startswith(f"safewatch_readings_{key}_total"):
                with contextlib.suppress(ValueError, IndexError):
                    sums[key] += float(line.rsplit(" ", 1)[1])
    return sums


@dataclass
class Board:
    """What the view shows: alerts as their events arrive, readings per second, incidents."""

    district: District
    alerts: dict[str, dict[str, object]] = field(default_factory=dict)
    events: deque[str] = field(default_factory=lambda: deque(maxlen=14))
    pending: dict[str, tuple[float, dict[str, object], set[str]]] = field(default_factory=dict)
    accepted: float = 0.0
    rejected: float = 0.0
    rate: float = 0.0
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=6))  # (time, accepted)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, msg: Message) -> None:
        """One alert event per department it is routed to: group them by event id."""
        try:
            body = json.loads(msg.payload)
            event_id, alert = str(body["event_id"]), body["alert"]
        except (ValueError, KeyError, TypeError):
            return  # not an alert event: nothing to show
        with self.lock:
            _, _, departments = self.pending.setdefault(event_id, (time.monotonic(), body, set()))
            departments.add(str(body.get("department", "?")))
            if isinstance(alert, dict) and "id" in alert:
                known = self.alerts.get(str(alert["id"]))
                # Retried deliveries can arrive late: keep the newest state (same offset: text order).
                if known is None or str(alert.get("updated_at")) >= str(known.get("updated_at")):
                    self.alerts[str(alert["id"])] = alert

    def ready_events(self, settle_s: float = 0.4) -> list[str]:
        """Events whose department copies have all arrived (none for ``settle_s``), as lines."""
        now, out = time.monotonic(), []
        with self.lock:
            for event_id, (first, body, departments) in list(self.pending.items()):
                if now - first >= settle_s:
                    del self.pending[event_id]
                    out.append(self._line(body, departments))
            self.events.extend(out)
        return out

    def _line(self, body: dict[str, object], departments: set[str]) -> str:
        a = body.get("alert")
        a = a if isinstance(a, dict) else {}
        site = self.district.sites.get(str(a.get("site")))
        where = f"{a.get('site')} {site.name}" if site else str(a.get("site"))
        return (f"{time.strftime('%H:%M:%S')} {body.get('type', '?')} {a.get('severity', '?')} {a.get('rule')} "
                f"at {where}: {a.get('message') or ''} → {', '.join(sorted(departments))}")

    def probe(self, api: str) -> None:
        """Readings accepted and rejected, from serve's Prometheus counters."""
        try:
            counts = readings_counters(httpx.get(f"{api}/metrics", timeout=2.0).text)
        except httpx.HTTPError:
            return
        self.samples.append((time.monotonic(), counts["accepted"]))
        (t0, a0), (t1, a1) = self.samples[0], self.samples[-1]
        self.rate = (a1 - a0) / (t1 - t0) if t1 > t0 else 0.0  # over the last ~10 s: steadier
        self.accepted, self.rejected = counts["accepted"], counts["rejected"]

    def open_counts(self) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Open alerts by severity, and by department and severity."""
        by_sev = {s.label: 0 for s in reversed(Severity)}
        by_dep: dict[str, dict[str, int]] = {}
        with self.lock:
            alerts = list(self.alerts.values())
        for a in alerts:
            if a.get("state") not in OPEN_STATES:
                continue
            sev = str(a.get("severity"))
            by_sev[sev] = by_sev.get(sev, 0) + 1
            deps = a.get("departments")
            for dep in deps if isinstance(deps, list) else []:
                row = by_dep.setdefault(str(dep), {s.label: 0 for s in reversed(Severity)})
                row[sev] = row.get(sev, 0) + 1
        return by_sev, by_dep

    def status_line(self) -> str:
        by_sev, _ = self.open_counts()
        opened = ", ".join(f"{n} {s}" for s, n in by_sev.items())
        return (f"{time.strftime('%H:%M:%S')} {self.rate:.1f} readings/s accepted ({self.accepted:.0f} in all, "
                f"{self.rejected:.0f} rejected); open alerts: {opened}")


def render(board: Board, serve: Serve, sim: Simulation, notes: deque[str]) -> Group:
    by_sev, by_dep = board.open_counts()
    head = Table.grid(padding=(0, 2))
    head.add_row("[b]API[/b]", serve.url, "[b]docs[/b]", f"{serve.url}/docs", "[b]admin token[/b]", serve.token)
    summary = sim.summary()
    head.add_row("[b]readings/s[/b]", f"{board.rate:.1f}", "[b]accepted[/b]", f"{board.accepted:.0f}",
                 "[b]rejected[/b]", f"{board.rejected:.0f}")
    head.add_row("[b]devices[/b]", str(summary.devices), "[b]published[/b]", str(summary.published), "", "")
    sev = Table(title="open alerts by severity", expand=False)
    for s in by_sev:
        sev.add_column(s, justify="right", style=SEVERITY_STYLE.get(s, ""))
    sev.add_row(*(str(n) for n in by_sev.values()))
    deps = Table(title="open alerts by department")
    deps.add_column("department")
    for s in by_sev:
        deps.add_column(s, justify="right", style=SEVERITY_STYLE.get(s, ""))
    for dep, row in sorted(by_dep.items()):
        name = board.district.departments.get(dep)
        deps.add_row(f"{dep} {name.name if name else ''}", *(str(n) for n in row.values()))
    elapsed = (sim.clock.now_ms() - sim.begin_ms) / 1000.0
    incidents = "\n".join(f"{sc.label}: {_progress(elapsed - sc.start_s, sc.duration_s)}" for sc in sim.scenarios)
    with board.lock:
        events = "\n".join(board.events) or "(waiting for the first alert)"
    # Text, not markup: alert messages may contain brackets.
    return Group(head, sev, deps, Text("incidents", style="bold"), Text(incidents),
                 Text("alert events", style="bold"), Text(events), Text(notes[-1] if notes else "", style="dim"))


def _progress(t: float, duration: float) -> str:
    def mmss(seconds: float) -> str:
        return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"

    if t < 0:
        return f"starts in {mmss(-t)}"
    return f"running {mmss(t)} of {mmss(duration)}" if t <= duration else "done"


def demo_scenarios(district: District, now_ms: int | None = None) -> list[Scenario]:
    """The incident sequence, each at its own site; night-residency only inside its night hours."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
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


def run_demo(args: argparse.Namespace) -> int:
    config = Path(args.config) if args.config else DEFAULT_CONFIG
    demo_dir = Path(args.data or "./var/demo").expanduser().resolve()
    plain = args.plain or not sys.stdout.isatty()
    console = Console(highlight=False)
    try:
        district = load_district(config)
    except ConfigError as err:
        print(f"safewatch demo: {err}", file=sys.stderr)
        return 2
    if args.duration is not None and not args.duration > 0:
        print(f"safewatch demo: --duration {args.duration:g}: must be a positive number", file=sys.stderr)
        return 2
    demo_dir.mkdir(parents=True, exist_ok=True)
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
        before = stack_status(stack_dir)
        started = [name for name in NAMES if not (isinstance(p := before[name], dict) and p["running"])]
        stack = stack_up(stack_dir, die_with_parent=True)  # a killed demo takes what it started along
        print(f"stack: MQTT {stack.mqtt_url}, InfluxDB {stack.influx_url} ({stack_dir})", flush=True)
        board = Board(district)
        tap = Tap(stack.mqtt_url, [f"{district.name}/alerts/#"], on_message=board.on_message).connect()
        notes: deque[str] = deque(maxlen=1)
        sim = Simulation(district, demo_scenarios(district), SimOptions(mqtt_url=stack.mqtt_url, seed=1),
                         on_note=functools.partial(_note, notes, plain))
        sim.connect()  # before serve: their retained "online" replaces any "offline" will of an earlier run
        _fresh_book(demo_dir)
        serve = Serve(config, demo_dir, stack, secrets.token_urlsafe(24), 8080 if _port_free(8080) else free_port())
        print(f"serve: starting on {serve.url} (log {serve.log})", flush=True)
        serve.start()
        print(f"serve: pid {serve.proc.pid if serve.proc else '?'} healthy", flush=True)
        print(f"API {serve.url}   docs {serve.url}/docs   admin token {serve.token}", flush=True)
        for sc in sim.scenarios:
            print(f"incident at +{sc.start_s:g} s: {sc.label} ({sc.site.name}): {sc.summary}", flush=True)
        worker = threading.Thread(target=sim.run, args=(stop,), name="simulation", daemon=True)
        worker.start()
        with stop_on_sigterm(stop):
            _watch(board, serve, sim, notes, stop, args.duration, plain, console)
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


def _note(notes: deque[str], plain: bool, text: str) -> None:
    notes.append(f"{time.strftime('%H:%M:%S')} {text}")
    if plain:
        print(notes[-1], flush=True)


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


def _watch(board: Board, serve: Serve, sim: Simulation, notes: deque[str], stop: threading.Event,
           duration: float | None, plain: bool, console: Console) -> None:
    end = None if duration is None else time.monotonic() + duration
    next_status = next_probe = time.monotonic()
    live = None if plain else Live(render(board, serve, sim, notes), console=console, refresh_per_second=2)
    with live or contextlib.nullcontext():
        while end is None or time.monotonic() < end:
            if serve.proc is not None and serve.proc.poll() is not None:
                raise DemoError(f"safewatch serve exited with code {serve.proc.returncode}; see {serve.log}")
            if time.monotonic() >= next_probe:
                board.probe(serve.url)
                next_probe += 2.0
            for line in board.ready_events():
                if plain:
                    print(line, flush=True)
            if plain and time.monotonic() >= next_status:
                print(board.status_line(), flush=True)
                next_status += 10.0
            if live is not None:
                live.update(render(board, serve, sim, notes))
            if stop.wait(0.5):
                break
    print(board.status_line(), flush=True)


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
