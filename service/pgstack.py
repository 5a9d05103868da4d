"""A private PostgreSQL server: ``initdb`` into a directory of its own, ``postgres`` on a free port.

Used by ``safewatch bench --processes N`` (its state database lives in its own temp dir) and by
the test suite's session server (``tests/support/pg.py`` re-exports it).

Never the machine's own server (5432): a free port, a private socket directory, listening on
127.0.0.1 only. The postmaster runs as our child with PR_SET_PDEATHSIG, so a killed pytest
takes it down (a ``pg_ctl start`` daemon would be orphaned); it is stopped by its pid.
As root, initdb and postgres refuse to run: both then run as the ``postgres`` user (Debian's
package creates it), with the data directory owned by it and outside pytest's 0700 temp root.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from service.stack import free_port

PG_SUPERUSER = "postgres"
START_TIMEOUT = 60.0


class PgError(RuntimeError):
    pass


def pg_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/N/bin`` with initdb, else the directory of ``initdb`` on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    which = shutil.which("initdb")
    if which:
        return Path(which).parent
    raise PgError("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): "
                  "`make deps` installs Debian's postgresql")


def _run_as() -> pwd.struct_passwd | None:
    """The account to run the server as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as err:
        raise PgError("running as root and no `postgres` user to run initdb/postgres as "
                      "(Debian's postgresql package creates it)") from err


def _drop_to(account: pwd.struct_passwd | None, die_with_parent: bool) -> Callable[[], None]:
    def preexec() -> None:
        if account is not None:
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
        if die_with_parent:
            # After setuid: a credential change clears the parent-death signal. 1 = PR_SET_PDEATHSIG;
            # SIGINT is PostgreSQL's fast shutdown.
            ctypes.CDLL(None).prctl(1, signal.SIGINT)
    return preexec


class PgServer:
    """One initdb'd cluster; ``start``/``stop`` may be repeated (outage tests) on the same port and data.

    ``root``: where its data, socket and log go (a fresh temp dir when None); removed by ``destroy``.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.bin = pg_bin_dir()
        self.account = _run_as()
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="safewatch-pg-"))
        else:
            root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock.mkdir()
        if self.account is not None:
            for p in (self.root, self.sock):
                os.chown(p, self.account.pw_uid, self.account.pw_gid)
        self._initdb()

    def _initdb(self) -> None:
        cmd = [str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_SUPERUSER, "-A", "trust",
               "-E", "UTF8", "--locale=C", "--no-sync"]
        res = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=120,
                             preexec_fn=_drop_to(self.account, die_with_parent=False))
        if res.returncode != 0:
            raise PgError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()[-2000:]}")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def start(self) -> None:
        if self.pid is not None:
            return
        # fsync off: the tests crash serve, never the machine, so durability of the OS cache is enough.
        cmd = [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.sock),
               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=32MB"]
        log = open(self.log, "ab")  # noqa: SIM115 - the child keeps it; closed below
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         preexec_fn=_drop_to(self.account, die_with_parent=True))
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PgError(f"postgres exited ({self.proc.returncode}) at start: {self._log_tail()}")
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                return
            time.sleep(0.1)
        self.stop()
        raise PgError(f"postgres on port {self.port} not answering after {START_TIMEOUT:g}s: {self._log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT) by pid, SIGKILL if it does not exit in ``timeout``."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, database: str) -> str:
        return f"postgresql://{PG_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace").strip()[-2000:]
        except OSError:
            return "(no log)"
