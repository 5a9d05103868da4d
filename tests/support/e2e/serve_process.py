"""``safewatch serve`` as a child process, configured only through its environment and flags."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from service.stack import StackInfo, free_port, tie_to_parent

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)$")
ROOT = Path(__file__).resolve().parents[3]
ADMIN_TOKEN = "e2e-admin-token"
_CONSOLE_SCRIPT = ROOT / ".venv" / "bin" / "safewatch"


def safewatch_argv(*args: str) -> list[str]:
    """The installed console script (the contract's CLI); the module if it is not installed."""
    if _CONSOLE_SCRIPT.exists():
        return [str(_CONSOLE_SCRIPT), *args]
    return [sys.executable, "-m", "service.cli", *args]


def clean_env(**safewatch: str) -> dict[str, str]:
    """This process's environment without any SAFEWATCH_* of the developer's, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEWATCH_")}
    env["PYTHONPATH"] = str(ROOT)  # for the `-m service.cli` fallback
    env["PYTHONUNBUFFERED"] = "1"
    return env | {f"SAFEWATCH_{k.upper()}": v for k, v in safewatch.items()}


class ServeProcess:
    """One ``safewatch serve --config FILE``; restartable on the same state, data dir and port.

    It runs in `workdir`, so a developer's ``.env`` in the checkout cannot change its settings.
    """

    def __init__(self, stack: StackInfo, config: Path, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.port = free_port()
        self.data_dir = workdir / "data"
        self.log = workdir / "serve.log"
        self.env = clean_env(mqtt_url=stack.mqtt_url, influx_url=stack.influx_url,
                             state_url=f"sqlite:///{workdir / 'state.db'}", data_dir=str(self.data_dir),
                             api_port=str(self.port), admin_token=ADMIN_TOKEN, log_level="INFO",
                             webhook_allow="127.0.0.1")  # the tests' webhook receivers are on loopback
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 45.0, require_ok: bool = True) -> None:
        """Starts serve and waits until /health answers (200 unless not `require_ok`)."""
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(safewatch_argv("serve", "--config", str(self.config)), env=self.env,
                                         cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, preexec_fn=tie_to_parent)
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"safewatch serve exited with {self.proc.returncode} while starting; "
                                     f"log:\n{self.log_tail()}")
            try:
                resp = httpx.get(f"{self.base_url}/health", timeout=2.0)
                if resp.status_code == 200 or (resp.status_code == 503 and not require_ok):
                    return
                last = f"{resp.status_code} {resp.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
        self.kill()  # a fixture that fails to start must not leave its serve running
        raise AssertionError(f"safewatch serve not healthy within {timeout:g}s (last: {last}); "
                             f"log:\n{self.log_tail()}")

    def health(self) -> tuple[int, dict[str, Any]]:
        resp = httpx.get(f"{self.base_url}/health", timeout=10.0)
        return resp.status_code, resp.json()

    def metrics(self) -> str:
        resp = httpx.get(f"{self.base_url}/metrics", timeout=10.0)
        resp.raise_for_status()
        return resp.text

    def counter(self, *words: str) -> float:
        """Sum of the /metrics samples whose name holds every word, whatever their labels.

        The contract names what /metrics counts, not the metric names, so match on words.
        """
        total = 0.0
        for line in self.metrics().splitlines():
            m = _SAMPLE.match(line)
            if m and all(w in m[1] for w in words) and not m[1].endswith("_created"):
                total += float(m[2])
        return total

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no drain, as in a power cut."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(15)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not drained within `timeout`; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
            raise AssertionError(f"serve did not stop within {timeout:g}s of SIGTERM; log:\n{self.log_tail()}"
                                 ) from None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
