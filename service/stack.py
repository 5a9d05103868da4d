"""Local Mosquitto and InfluxDB for development, tests, the demo and the benchmark.

A stack lives in one directory: generated configs, data, logs, pid files and
``stack.json`` (its ports), so ``up`` twice reuses the same processes and ports,
and ``down`` stops exactly the processes that this directory started.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path("var/stack")
NAMES = ("mosquitto", "influxd")
_CONF = {"mosquitto": "mosquitto.conf", "influxd": "influxdb.conf"}
_PORT_KEY = {"mosquitto": "mqtt_port", "influxd": "influx_port"}
_OPTION = {"mosquitto": "--mqtt-port", "influxd": "--influx-port"}
_PACKAGE = {"mosquitto": "mosquitto", "influxd": "influxdb"}
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # our own children, so that we can reap them
_LOCKED: set[tuple[Path, int]] = set()  # (directory, thread) holding its lock


class StackError(RuntimeError):
    """A stack process could not be found, started or stopped; the message says why."""


@dataclass(frozen=True)
class StackInfo:
    data_dir: Path
    mqtt_port: int
    influx_port: int
    mosquitto_pid: int | None
    influxd_pid: int | None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        # SO_REUSEADDR like the servers, so only a live listener counts, not TIME_WAIT leftovers.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _answers(name: str, port: int) -> bool:
    if name == "mosquitto":
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
        return False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", "/ping")
        return conn.getresponse().status == 204
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _poll(done: Callable[[], bool], timeout: float, abort: Callable[[], bool] = lambda: False) -> bool:
    """Waits until done() (True) or until abort() or the timeout (False)."""
    deadline = time.monotonic() + timeout
    while not done():
        if abort() or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _binary(name: str) -> str:
    # Debian puts mosquitto in /usr/sbin, which is not on a normal user's PATH.
    if found := shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin"):
        return found
    raise StackError(f"{name} not found: apt-get install {_PACKAGE[name]} (or `make deps`)")


def _load_state(d: Path) -> dict[str, int]:
    path = d / "stack.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise StackError(f"{path} is unreadable ({exc}); delete it to choose new ports") from exc
    return {k: v for k, v in raw.items() if isinstance(v, int)} if isinstance(raw, dict) else {}


def _save_state(d: Path, **values: int) -> None:
    (d / "stack.json.tmp").write_text(json.dumps(_load_state(d) | values, indent=2, sort_keys=True) + "\n")
    os.replace(d / "stack.json.tmp", d / "stack.json")


def _is_ours(name: str, pid: int, d: Path) -> bool:
    """Whether pid is still the `name` started with this directory's config: pids get reused."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]  # now reaped: a zombie would still pass kill(pid, 0)
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return Path(os.fsdecode(argv[0])).name == name and os.fsencode(d / _CONF[name]) in argv


def _alive_pid(d: Path, name: str) -> int | None:
    try:
        pid = int((d / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_ours(name, pid, d) else None


@contextlib.contextmanager
def _lock(d: Path, timeout: float = 60.0) -> Iterator[None]:
    """Serialises starts and stops on one directory across processes and threads; re-entrant."""
    key = (d, threading.get_ident())
    if key in _LOCKED:
        yield
        return
    with open(d / ".lock", "a") as fh:  # Popen's close_fds keeps it out of the servers

        def acquired() -> bool:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

        if not _poll(acquired, timeout):
            raise StackError(f"{d / '.lock'} still held by another `safewatch stack` after {timeout:g}s")
        _LOCKED.add(key)
        try:
            yield
        finally:
            _LOCKED.discard(key)  # closing fh releases the flock


def tie_to_parent() -> None:
    # Runs in the child before exec: the kernel sends it SIGTERM when our thread dies, so a
    # killed pytest leaves no server behind.  1 is PR_SET_PDEATHSIG.
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _mosquitto_conf(d: Path, port: int) -> str:
    lines = [
        "# Generated by `safewatch stack up`; rewritten on every start.",
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {d / 'mosquitto'}/",
        "autosave_interval 60",
        "persistent_client_expiration 7d",  # ingest's session must outlive a long outage
        # Ingest acks a QoS 1 message only once its data is durable, so acks come late and the
        # default of 20 in flight would throttle it to a trickle.
        "max_inflight_messages 1000",
        # What arrives while the subscriber restarts waits for it instead of being dropped.
        "max_queued_messages 1000000",
        "max_queued_bytes 0",
        # message_size_limit stays unset: the protocol's 256 MB ceiling lets 1 MB uploads through.
        "set_tcp_nodelay true",
        f"log_dest file {d / 'mosquitto.log'}",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # else it drops to user mosquitto, who cannot write our dir
    return "\n".join(lines) + "\n"


def _influx_conf(d: Path, port: int, rpc_port: int) -> str:
    root = d / "influxdb"
    meta, data, wal = (json.dumps(str(root / sub)) for sub in ("meta", "data", "wal"))  # valid TOML
    return f"""# Generated by `safewatch stack up`; rewritten on every start.
# Debian's 1.6 build knows only reporting-enabled, upstream only reporting-disabled;
# 1.x ignores keys it does not know, so both are set.
reporting-enabled = false
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = {meta}
[data]
  dir = {data}
  wal-dir = {wal}
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  suppress-write-log = true
  max-body-size = 0
[continuous_queries]
  enabled = true
  log-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


def _choose_port(d: Path, key: str, given: int | None, option: str) -> int:
    recorded = _load_state(d).get(key)
    port = given or recorded or free_port()
    if port_in_use(port):
        source = option if given else f"{key} in {d / 'stack.json'}" if recorded else "free port"
        raise StackError(f"{source} {port}: port already in use on 127.0.0.1")
    return port


def _start(name: str, data_dir: Path, port: int | None, timeout: float, die_with_parent: bool | None) -> int:
    d = data_dir.expanduser().resolve()
    d.mkdir(parents=True, exist_ok=True)
    key, option = _PORT_KEY[name], _OPTION[name]
    with _lock(d):
        if (pid := _alive_pid(d, name)) is not None:
            running_port = _load_state(d).get(key)
            if running_port is None or port not in (None, running_port):
                raise StackError(f"{option} {port}: {name} (pid {pid}) already runs on port "
                                 f"{running_port} for {d}; run `safewatch stack down` first")
            if not _poll(lambda: _answers(name, running_port), timeout):
                raise StackError(f"{name} (pid {pid}) not answering on {running_port} after {timeout:g}s")
            return pid
        binary = _binary(name)
        port = _choose_port(d, key, port, option)
        if die_with_parent is None:  # a restart (of influxd in an outage test) is tied like the first start
            die_with_parent = bool(_load_state(d).get("die_with_parent", 0))
        _save_state(d, die_with_parent=int(die_with_parent))
        conf = d / _CONF[name]
        if name == "mosquitto":
            (d / "mosquitto").mkdir(exist_ok=True)
            conf.write_text(_mosquitto_conf(d, port))
            argv = [binary, "-c", str(conf)]
            _save_state(d, mqtt_port=port)
        else:
            rpc_port = _choose_port(d, "influx_rpc_port", None, "")  # its backup/restore service
            conf.write_text(_influx_conf(d, port, rpc_port))
            argv = [binary, "-config", str(conf)]
            _save_state(d, influx_port=port, influx_rpc_port=rpc_port)
        log = d / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=d, start_new_session=True,  # Ctrl-C in a shell must not reach it
                                    preexec_fn=tie_to_parent if die_with_parent else None)
        _CHILDREN[proc.pid] = proc
        (d / f"{name}.pid").write_text(f"{proc.pid}\n")
        ready_port = port
        if _poll(lambda: _answers(name, ready_port), timeout, lambda: proc.poll() is not None):
            return proc.pid
        if proc.poll() is None:
            proc.kill()  # a server that never answered is of no use to the next `up` either
            proc.wait(10.0)
            raise StackError(f"{name} not answering on port {port} after {timeout:g}s (killed); see {log}")
        raise StackError(f"{name} exited with code {proc.returncode} while starting; end of {log}:\n"
                         + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))


def start_mosquitto(data_dir: Path, port: int | None = None, timeout: float = 30.0,
                    die_with_parent: bool | None = None) -> int:
    """Starts this directory's Mosquitto (on its recorded port) unless it runs; returns its pid."""
    return _start("mosquitto", data_dir, port, timeout, die_with_parent)


def start_influxd(data_dir: Path, port: int | None = None, timeout: float = 30.0,
                  die_with_parent: bool | None = None) -> int:
    """Starts this directory's InfluxDB (on its recorded port) unless it runs; returns its pid."""
    return _start("influxd", data_dir, port, timeout, die_with_parent)


def stack_up(data_dir: Path, mqtt_port: int | None = None, influx_port: int | None = None,
             timeout: float = 30.0, die_with_parent: bool | None = None) -> StackInfo:
    """Starts whatever of the stack is not running yet.

    die_with_parent=True has the kernel stop the servers when the calling thread dies (tests);
    None keeps what this directory's first start chose (default: they outlive us, as for the CLI).
    """
    d = data_dir.expanduser().resolve()
    mosquitto_pid = start_mosquitto(d, mqtt_port, timeout, die_with_parent)
    influxd_pid = start_influxd(d, influx_port, timeout, die_with_parent)
    state = _load_state(d)
    return StackInfo(d, state["mqtt_port"], state["influx_port"], mosquitto_pid, influxd_pid)


def _exited(name: str, pid: int, d: Path, timeout: float) -> bool:
    return _poll(lambda: not _is_ours(name, pid, d), timeout)


def _stop(data_dir: Path, names: tuple[str, ...], timeout: float) -> list[str]:
    d = data_dir.expanduser().resolve()
    if not d.is_dir():
        return []
    with _lock(d):
        victims = [(name, pid) for name in names if (pid := _alive_pid(d, name)) is not None]
        for _, pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # both save their data on SIGTERM
        deadline = time.monotonic() + timeout
        for name, pid in victims:
            if _exited(name, pid, d, deadline - time.monotonic()):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _exited(name, pid, d, 10.0):
                raise StackError(f"{name} (pid {pid}) still alive 10s after SIGKILL")
        for name in names:
            (d / f"{name}.pid").unlink(missing_ok=True)
    return [name for name, _ in victims]


def stop_process(name: str, data_dir: Path, timeout: float = 15.0) -> bool:
    """Stops this directory's `name` (SIGTERM, SIGKILL after timeout); False if it was not running."""
    if name not in NAMES:
        raise ValueError(f"name={name!r}: expected one of {', '.join(NAMES)}")
    return bool(_stop(data_dir, (name,), timeout))


def stop_mosquitto(data_dir: Path, timeout: float = 15.0) -> bool:
    return stop_process("mosquitto", data_dir, timeout)


def stop_influxd(data_dir: Path, timeout: float = 15.0) -> bool:
    return stop_process("influxd", data_dir, timeout)


def stack_down(data_dir: Path, timeout: float = 15.0) -> list[str]:
    """Stops exactly the processes in the pid files that are still ours; returns their names."""
    return _stop(data_dir, NAMES, timeout)


def stack_status(data_dir: Path) -> dict[str, object]:
    d = data_dir.expanduser().resolve()
    state = _load_state(d) if d.is_dir() else {}
    procs: dict[str, dict[str, object]] = {}
    for name in NAMES:
        pid, port = _alive_pid(d, name), state.get(_PORT_KEY[name])
        procs[name] = {"pid": pid, "port": port, "running": pid is not None,
                       "answering": pid is not None and port is not None and _answers(name, port)}
    mqtt_port, influx_port = state.get("mqtt_port"), state.get("influx_port")
    return {"data_dir": str(d), "running": all(p["answering"] for p in procs.values()),
            "mqtt_url": f"mqtt://127.0.0.1:{mqtt_port}" if mqtt_port else None,
            "influx_url": f"http://127.0.0.1:{influx_port}" if influx_port else None, **procs}


def _port_arg(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return int(text)


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="safewatch stack", description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command, text in (("up", "start Mosquitto and InfluxDB unless running; print their URLs"),
                          ("down", "stop the processes this directory started"),
                          ("status", "show pids and URLs; exit 1 unless both answer")):
        p = sub.add_parser(command, help=text, description=text)
        p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
                       help=f"stack directory (default ./{DEFAULT_DATA_DIR})")
        if command == "up":
            p.add_argument("--mqtt-port", type=_port_arg, metavar="N", help="default: a free port")
            p.add_argument("--influx-port", type=_port_arg, metavar="N", help="default: a free port")
            p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="start-up wait (30)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 after --help
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "up":
            info = stack_up(args.data, args.mqtt_port, args.influx_port, args.timeout, die_with_parent=False)
            print(info.mqtt_url)
            print(info.influx_url)
            print(f"mosquitto pid {info.mosquitto_pid}, influxd pid {info.influxd_pid}, "
                  f"data in {info.data_dir}", file=sys.stderr)
        elif args.command == "down":
            stopped = stack_down(args.data)
            print(f"stopped {', '.join(stopped)}" if stopped else f"nothing running in {args.data}")
        else:
            status = stack_status(args.data)
            for name, key in (("mosquitto", "mqtt_url"), ("influxd", "influx_url")):
                proc = status[name]
                assert isinstance(proc, dict)
                state = "running" if proc["answering"] else "stopped"
                print(f"{name:<10} {state:<8} pid {proc['pid'] or '-':<8} {status[key] or '-'}")
            return 0 if status["running"] else 1
    except (StackError, OSError) as exc:
        print(f"safewatch stack {args.command}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
