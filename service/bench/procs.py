"""The ``serve`` processes under test: one on SQLite, or N sharing a PostgreSQL and N partitions.

Each process gets its own API port and data directory; their CPU time and memory are read
from ``/proc``. ``RssSampler`` records every process's resident memory once a second, so a
run shows whether memory levels off or keeps growing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from service.stack import StackInfo, free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "bench-admin-token"


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    """Resident memory of ``pid`` (``VmHWM``: its peak so far), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Serve:
    """One ``safewatch serve`` child, started and waited for until /health answers 200."""

    def __init__(self, stack: StackInfo, config: Path, data: Path, state_url: str,
                 extra_env: dict[str, str] | None = None) -> None:
        data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = data
        env = os.environ | {
            "SAFEWATCH_MQTT_URL": stack.mqtt_url, "SAFEWATCH_INFLUX_URL": stack.influx_url,
            "SAFEWATCH_STATE_URL": state_url, "SAFEWATCH_DATA_DIR": str(data / "var"),
            "SAFEWATCH_API_PORT": str(self.port), "SAFEWATCH_ADMIN_TOKEN": ADMIN_TOKEN,
            # The latency probe's webhook receiver listens on loopback.
            "SAFEWATCH_WEBHOOK_ALLOW": "127.0.0.1", "SAFEWATCH_LOG_LEVEL": "WARNING"} | (extra_env or {})
        self.log = open(data / "serve.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--config", str(config)],
                                     env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not become healthy; see {self.data / 'serve.log'}")
            time.sleep(0.2)

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class ServeGroup:
    """``count`` serve processes on one state database; with more than one, ``count`` partitions."""

    def __init__(self, stack: StackInfo, config: Path, data: Path, state_url: str, count: int) -> None:
        env = {"SAFEWATCH_PARTITIONS": str(count), "SAFEWATCH_LEASE_TTL": "5s"} if count > 1 else {}
        self.members: list[Serve] = []
        self._cpu_last: dict[int, float] = {}  # pid → its CPU seconds when last sampled
        self._cpu_lock = threading.Lock()
        try:
            for n in range(count):
                self.members.append(Serve(stack, config, data / f"serve-{n}", state_url, env))
            for m in self.members:
                m.wait_healthy()
        except BaseException:
            self.stop()
            raise

    @property
    def first(self) -> Serve:
        return self.members[0]

    def cpu_seconds(self) -> float:
        """CPU time of every member so far; a member that is gone (``--kill-one``) counts with its
        last sample (``/proc`` forgets a reaped process: its work must not drop out of the sum)."""
        with self._cpu_lock:
            for m in self.members:
                now = cpu_seconds(m.pid)
                if now > 0:
                    self._cpu_last[m.pid] = now
            return sum(self._cpu_last.values())

    def rss_mb(self, key: str = "VmRSS") -> list[float]:
        return [round(rss_mb(m.pid, key), 1) for m in self.members]

    def stop(self) -> None:
        for m in self.members:
            m.stop()


class RssSampler:
    """Every process's RSS once per ``every_s``: ``samples`` is [[seconds since start, MB, MB, ...], ...].
    It samples their CPU time as well, so a process killed between samples loses at most one interval."""

    def __init__(self, group: ServeGroup, every_s: float = 1.0) -> None:
        self.group, self.every_s = group, every_s
        self.samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.wait(self.every_s):
            self.samples.append([round(time.monotonic() - t0, 1), *self.group.rss_mb()])
            self.group.cpu_seconds()

    def stop(self) -> list[list[float]]:
        self._stop.set()
        self._thread.join(5)
        return self.samples
