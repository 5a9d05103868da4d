"""Two ``serve`` processes on two "machines": network namespaces of their own, joined by veth pairs.

The broker, InfluxDB and PostgreSQL run in the root namespace on loopback; a relay in the test
forwards each one from the root end of both veth pairs. Every address is in 10.213.47.0/24, which
exists only for this test (two /30 links: .1-.2 for the first namespace, .5-.6 for the second);
nothing is sent anywhere but those addresses and loopback. Needs root (``ip netns``); skipped,
saying why, only where namespaces cannot be made. The namespaces (and with them the veth pairs)
are deleted at the end.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from service.bench.measure import count_points
from service.stack import StackInfo
from store.influx import InfluxClient
from tests.support.cluster import Load, write_config
from tests.support.e2e.serve_process import ADMIN_TOKEN, clean_env, safewatch_argv
from tests.support.helpers import wait_until

NET = "10.213.47"
LINKS = [(f"{NET}.1", f"{NET}.2"), (f"{NET}.5", f"{NET}.6")]  # (root end, namespace end), /30 each
TTL = "2s"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=15)


def _netns_reason() -> str | None:
    probe = f"swprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (OSError, subprocess.CalledProcessError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        return f"ip netns not permitted here: {err.decode(errors='replace').strip() or exc}"
    _ip("netns", "del", probe)
    return None


class Relay:
    """Forwards TCP from (listen address, port) to 127.0.0.1:port, one thread pair per connection."""

    def __init__(self, address: str, port: int) -> None:
        self.port = port
        self._srv = socket.create_server((address, port))
        self._stop = False
        threading.Thread(target=self._accept, daemon=True, name=f"relay-{address}:{port}").start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop = True
        self._srv.close()


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    reason = _netns_reason()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:5]
    names = [f"sw{tag}n{i}" for i in range(len(LINKS))]
    try:
        for i, (name, (root_ip, ns_ip)) in enumerate(zip(names, LINKS, strict=True)):
            host, peer = f"sw{tag}h{i}", f"sw{tag}p{i}"
            _ip("netns", "add", name)
            _ip("link", "add", host, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", name)
            _ip("addr", "add", f"{root_ip}/30", "dev", host)
            _ip("link", "set", host, "up")
            _ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", peer)
            _ip("-n", name, "link", "set", peer, "up")
            _ip("-n", name, "link", "set", "lo", "up")
        yield names
    finally:
        for name in names:
            with contextlib.suppress(subprocess.CalledProcessError):
                _ip("netns", "del", name)  # deleting the namespace deletes its veth pair too


def _port(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def _with_host(url: str, host: str) -> str:
    u = urlsplit(url)
    netloc = u.netloc.replace(f"{u.hostname}:", f"{host}:")
    return u._replace(netloc=netloc).geturl()


def test_two_machines_share_a_district(stack: StackInfo, district: str, influx_db: str, pg_database: str,
                                       tmp_path: Path, namespaces: list[str]) -> None:
    config = write_config(tmp_path / "district.yaml", district)
    relays = [Relay(root_ip, _port(url)) for root_ip, _ in LINKS
              for url in (stack.mqtt_url, stack.influx_url, pg_database)]
    procs: list[subprocess.Popen[bytes]] = []
    apis: list[str] = []
    try:
        for i, (name, (root_ip, ns_ip)) in enumerate(zip(namespaces, LINKS, strict=True)):
            work = tmp_path / f"m{i}"
            work.mkdir()
            env = clean_env(mqtt_url=_with_host(stack.mqtt_url, root_ip),
                            influx_url=_with_host(stack.influx_url, root_ip),
                            state_url=_with_host(pg_database, root_ip), data_dir=str(work / "data"),
                            api_host=ns_ip, api_port="8080", admin_token=ADMIN_TOKEN, partitions="4",
                            lease_ttl=TTL, log_level="INFO")
            with open(work / "serve.log", "ab") as log:
                procs.append(subprocess.Popen(["ip", "netns", "exec", name, *safewatch_argv("serve", "--config",
                                                                                          str(config))],
                                              env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT))
            apis.append(f"http://{ns_ip}:8080")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

        def held() -> dict[int, int]:
            """pid → partitions held, as the first reachable machine sees it."""
            for api in apis:
                with contextlib.suppress(httpx.HTTPError):
                    view = httpx.get(f"{api}/api/v1/cluster", headers=auth, timeout=3).json()
                    pids = {p["id"]: p["pid"] for p in view["processes"]}
                    out: dict[int, int] = {}
                    for lease in view["partitions"]:
                        if lease["owner"] is not None:
                            out[pids[lease["owner"]]] = out.get(pids[lease["owner"]], 0) + 1
                    return out
            return {}

        wait_until(lambda: held() == {p.pid: 2 for p in procs}, 90, "two partitions on each machine", interval=0.5)
        load = Load(stack.mqtt_url, district, rate=200).start()
        time.sleep(2)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(15)
        t0 = time.monotonic()
        wait_until(lambda: held() == {procs[1].pid: 4}, 15, "every partition on the surviving machine", interval=0.2)
        print(f"netns takeover: {time.monotonic() - t0:.2f}s")
        time.sleep(2)
        published = load.stop()
        influx = InfluxClient(stack.influx_url, influx_db)
        deadline = time.monotonic() + 30
        while count_points(influx) < published and time.monotonic() < deadline:
            time.sleep(0.5)
        assert count_points(influx) == published
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(15)
        for r in relays:
            r.close()
