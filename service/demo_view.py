"""What ``safewatch demo`` shows: the alert board, and either a live terminal view or plain lines.

The board collects alert events as ``serve`` publishes them (one copy per department, grouped
by event id) and readings per second from serve's ``/metrics``; the view draws it with rich,
or prints one line per event and a status line every 10 s (``--plain``, or not a terminal).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from domain.district import District
from domain.severity import Severity
from simulators.fleet import Simulation
from transport.mqtt import Message

SEVERITY_STYLE = {"red": "bold red", "orange": "bold dark_orange", "yellow": "yellow", "blue": "blue"}
OPEN_STATES = ("open", "acknowledged")


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
        """One alert or hazard event per department it is routed to: group them by event id."""
        try:
            body = json.loads(msg.payload)
            event_id = str(body["event_id"])
            alert = body["alert"] if "alert" in body else body["hazard"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # neither an alert nor a hazard event: nothing to show
        if "hazard" in body:  # hazards are listed in the events, not counted as open alerts
            alert = None
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
        if isinstance(h := body.get("hazard"), dict):
            return self._hazard_line(body, h, departments)
        a = body.get("alert")
        a = a if isinstance(a, dict) else {}
        site = self.district.sites.get(str(a.get("site")))
        where = f"{a.get('site')} {site.name}" if site else str(a.get("site"))
        return (f"{time.strftime('%H:%M:%S')} {body.get('type', '?')} {a.get('severity', '?')} {a.get('rule')} "
                f"at {where}: {a.get('message') or ''} → {', '.join(sorted(departments))}")

    def _hazard_line(self, body: dict[str, object], h: dict[str, object], departments: set[str]) -> str:
        """``hazard_overdue major 17 at GS-001 某加油站: 应急照明失效 (overdue by 1m: step 1 of 3 ...)``."""
        site = self.district.sites.get(str(h.get("site")))
        where = f"{h.get('site')} {site.name}" if site else str(h.get("site"))
        events = h.get("events")
        last = events[-1] if isinstance(events, list) and events and isinstance(events[-1], dict) else {}
        note = f" ({last.get('note')})" if last.get("note") else ""
        return (f"{time.strftime('%H:%M:%S')} {body.get('type', '?')} {h.get('level', '?')} hazard {h.get('id')} "
                f"at {where}: {h.get('title') or ''}{note} → {', '.join(sorted(departments))}")

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


def render(board: Board, sim: Simulation, notes: deque[str], api: str, token: str) -> Group:
    """The live view: where the API is, readings, open alerts, incidents, the latest events."""
    by_sev, by_dep = board.open_counts()
    head = Table.grid(padding=(0, 2))
    head.add_row("[b]API[/b]", api, "[b]docs[/b]", f"{api}/docs", "[b]admin token[/b]", token)
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



def note(notes: deque[str], plain: bool, text: str) -> None:
    """Keeps the simulation's latest note for the live view; in plain mode prints it too."""
    notes.append(f"{time.strftime('%H:%M:%S')} {text}")
    if plain:
        print(notes[-1], flush=True)


def watch(board: Board, sim: Simulation, notes: deque[str], stop: threading.Event, *, api: str, token: str,
          duration: float | None, plain: bool, console: Console, check: Callable[[], None]) -> None:
    """Shows the board until ``stop`` is set or ``duration`` seconds have passed.

    ``check`` runs every half second before anything is drawn, so the caller can end the
    view (by raising) when what feeds it has died.
    """
    end = None if duration is None else time.monotonic() + duration
    next_status = next_probe = time.monotonic()
    live = None if plain else Live(render(board, sim, notes, api, token), console=console, refresh_per_second=2)
    with live or contextlib.nullcontext():
        while end is None or time.monotonic() < end:
            check()
            if time.monotonic() >= next_probe:
                board.probe(api)
                next_probe += 2.0
            for line in board.ready_events():
                if plain:
                    print(line, flush=True)
            if plain and time.monotonic() >= next_status:
                print(board.status_line(), flush=True)
                next_status += 10.0
            if live is not None:
                live.update(render(board, sim, notes, api, token))
            if stop.wait(0.5):
                break
    print(board.status_line(), flush=True)
