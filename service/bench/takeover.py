"""``--kill-one``: SIGKILL one of several serve processes mid-load and time the takeover.

The time runs from the kill until ``GET /api/v1/cluster`` (asked of a surviving process)
shows every partition held by a live process: within ``SAFEWATCH_LEASE_TTL`` if the leases
do their job (a lease runs 3/4 of it past its last renewal; see ``service.cluster``). The load
keeps running, so ``lost`` still says whether the dead process's persistent sessions handed
everything on. The victim's CPU time is read just before the kill, so the run's CPU per reading
still counts its work.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from service.bench.procs import ADMIN_TOKEN, Serve, ServeGroup


class KillOne:
    def __init__(self, group: ServeGroup, after_s: float, timeout_s: float = 60.0) -> None:
        if len(group.members) < 2:
            raise ValueError("--kill-one needs --processes 2 or more")
        self.group, self.after_s, self.timeout_s = group, after_s, timeout_s
        self.takeover_s: float | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="kill-one", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self) -> dict[str, Any]:
        self._thread.join(self.after_s + self.timeout_s + 10)
        out: dict[str, Any] = {"takeover_s": None if self.takeover_s is None else round(self.takeover_s, 2)}
        if self.error:
            out["takeover_error"] = self.error
        return out

    @staticmethod
    def _cluster(serve: Serve) -> dict[str, Any]:
        r = httpx.get(f"{serve.base}/api/v1/cluster", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=5)
        r.raise_for_status()
        return dict(r.json())

    def _run(self) -> None:
        time.sleep(self.after_s)
        victim, survivor = self.group.members[-1], self.group.members[0]
        try:
            before = self._cluster(survivor)
            dead = {p["id"] for p in before["processes"] if p.get("pid") == victim.pid}
            self.group.cpu_seconds()  # the victim's CPU time, read while /proc still has it
            victim.kill()
            killed_at = time.monotonic()
            while time.monotonic() - killed_at < self.timeout_s:
                now = self._cluster(survivor)
                if all(p["owner"] is not None and p["owner"] not in dead for p in now["partitions"]):
                    self.takeover_s = time.monotonic() - killed_at
                    return
                time.sleep(0.1)
            self.error = f"partitions still unowned {self.timeout_s:g}s after the kill"
        except (httpx.HTTPError, KeyError, TypeError) as exc:
            self.error = f"GET /api/v1/cluster: {exc!r}"
