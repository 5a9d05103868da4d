"""``bench --processes N --kill-one``: the killed process's CPU time stays in the run's sum."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import SimpleNamespace

from service.bench.procs import ServeGroup


def test_a_killed_member_keeps_its_last_sampled_cpu_time() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        group = ServeGroup.__new__(ServeGroup)  # the CPU bookkeeping only, without serve processes
        group.members = [SimpleNamespace(pid=busy.pid)]  # type: ignore[list-item]
        group._cpu_last, group._cpu_lock = {}, threading.Lock()
        deadline = time.monotonic() + 10
        while (before := group.cpu_seconds()) < 0.2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        busy.kill()
        busy.wait(10)
    assert group.cpu_seconds() >= before > 0  # gone from /proc, still counted
