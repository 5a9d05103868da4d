"""The local stack launcher against the real Mosquitto and InfluxDB binaries."""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.stack import (
    StackError,
    StackInfo,
    cli_main,
    stack_down,
    stack_status,
    stack_up,
    start_influxd,
    start_mosquitto,
    stop_influxd,
    stop_mosquitto,
)
from tests.support.helpers import (
    cli_publish,
    cli_subscribe,
    create_database,
    influx_ping,
    influx_rows,
    influx_write,
    wait_until,
)

pytestmark = pytest.mark.integration


def _runs_from(pid: int, data_dir: Path) -> bool:
    """Whether pid is (still) a process whose command line names data_dir."""
    try:
        return os.fsencode(data_dir) in (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[StackInfo]:
    """A private stack for tests that stop servers or take the whole stack down."""
    data_dir = tmp_path / "stack"
    try:
        yield stack_up(data_dir, die_with_parent=True)
    finally:
        stack_down(data_dir)


def test_up_twice_returns_the_same_processes_and_ports(stack: StackInfo) -> None:
    # Compared with a fresh `up`, not the fixture: other tests may have restarted a server.
    first = stack_up(stack.data_dir)
    assert stack_up(stack.data_dir) == first
    assert stack_up(stack.data_dir, mqtt_port=stack.mqtt_port, influx_port=stack.influx_port) == first
    assert (first.mqtt_port, first.influx_port) == (stack.mqtt_port, stack.influx_port)


def test_up_refuses_another_port_while_running(stack: StackInfo) -> None:
    other = stack.mqtt_port + 1 if stack.mqtt_port < 65535 else stack.mqtt_port - 1
    with pytest.raises(StackError, match=f"--mqtt-port {other}: mosquitto .* already runs on port"):
        stack_up(stack.data_dir, mqtt_port=other)


def test_status_reports_both_running_with_urls(stack: StackInfo) -> None:
    current = stack_up(stack.data_dir)
    status = stack_status(stack.data_dir)
    assert status["running"] is True
    assert status["mqtt_url"] == stack.mqtt_url == f"mqtt://127.0.0.1:{stack.mqtt_port}"
    assert status["influx_url"] == stack.influx_url == f"http://127.0.0.1:{stack.influx_port}"
    assert status["mosquitto"] == {"pid": current.mosquitto_pid, "port": stack.mqtt_port,
                                   "running": True, "answering": True}
    assert status["influxd"] == {"pid": current.influxd_pid, "port": stack.influx_port,
                                 "running": True, "answering": True}


def test_generated_configs_keep_data_inside_the_stack_dir(stack: StackInfo) -> None:
    mosquitto_conf = (stack.data_dir / "mosquitto.conf").read_text()
    assert f"listener {stack.mqtt_port} 127.0.0.1" in mosquitto_conf
    assert f"persistence_location {stack.data_dir}/mosquitto/" in mosquitto_conf
    influx_conf = (stack.data_dir / "influxdb.conf").read_text()
    assert f'bind-address = "127.0.0.1:{stack.influx_port}"' in influx_conf
    assert (stack.data_dir / "influxdb" / "meta").is_dir()


def test_mqtt_qos1_queues_for_a_persistent_session_while_it_is_away(stack: StackInfo, district: str) -> None:
    topic, client_id = f"{district}/gas_station/GS-001/d1/telemetry", f"{district}-ingest"
    cli_subscribe(stack, f"{district}/#", count=0, client_id=client_id)  # session exists, client gone
    cli_publish(stack, topic, '{"values": {"vapor_lel": 1.5}}')
    cli_publish(stack, topic, '{"values": {"vapor_lel": 2.5}}')
    received = cli_subscribe(stack, f"{district}/#", count=2, client_id=client_id)
    assert received == [b'{"values": {"vapor_lel": 1.5}}', b'{"values": {"vapor_lel": 2.5}}']


def test_mqtt_passes_a_one_megabyte_payload(stack: StackInfo, district: str) -> None:
    payload = base64.b64encode(os.urandom(786_432))  # 1 MiB of text, so no NUL separators inside
    assert len(payload) == 1 << 20
    cli_subscribe(stack, f"{district}/big", count=0, client_id=f"{district}-big")
    cli_publish(stack, f"{district}/big", payload)
    assert cli_subscribe(stack, f"{district}/big", count=1, client_id=f"{district}-big") == [payload]


def test_influx_answers_ping_and_round_trips_a_point(stack: StackInfo, district: str) -> None:
    ping = httpx.get(f"{stack.influx_url}/ping", timeout=5.0)
    assert ping.status_code == 204
    assert ping.headers["X-Influxdb-Version"].startswith("1.")
    create_database(stack, district)
    influx_write(stack, district, ["gas_station,site=GS-001,device=d1,street=s vapor_lel=3.25 1764300000123"])
    rows = influx_rows(stack, district, "SELECT vapor_lel, site FROM gas_station")
    assert rows == [{"_measurement": "gas_station", "time": 1764300000123, "vapor_lel": 3.25,
                     "site": "GS-001"}]


def test_influxd_stops_and_restarts_alone_keeping_its_data(own_stack: StackInfo, district: str) -> None:
    create_database(own_stack, district)
    influx_write(own_stack, district, ["m v=1 1764300000000", "m v=2 1764300001000"])
    assert stop_influxd(own_stack.data_dir) is True
    assert not influx_ping(own_stack)
    status = stack_status(own_stack.data_dir)
    assert status["running"] is False
    assert status["mosquitto"]["running"] is True  # type: ignore[index]
    assert status["influxd"]["running"] is False  # type: ignore[index]
    assert stop_influxd(own_stack.data_dir) is False

    new_pid = start_influxd(own_stack.data_dir)
    assert new_pid != own_stack.influxd_pid
    assert influx_ping(own_stack)  # same port as before
    assert [r["v"] for r in influx_rows(own_stack, district, "SELECT v FROM m")] == [1, 2]
    assert stack_status(own_stack.data_dir)["running"] is True


def test_mosquitto_restart_keeps_queued_messages(own_stack: StackInfo, district: str) -> None:
    client_id = f"{district}-durable"
    cli_subscribe(own_stack, f"{district}/#", count=0, client_id=client_id)
    cli_publish(own_stack, f"{district}/x", "kept across restart")
    assert stop_mosquitto(own_stack.data_dir) is True
    start_mosquitto(own_stack.data_dir)
    assert cli_subscribe(own_stack, f"{district}/#", count=1, client_id=client_id) == [b"kept across restart"]


def test_down_stops_exactly_its_own_pids(own_stack: StackInfo, stack: StackInfo) -> None:
    ours = [own_stack.mosquitto_pid, own_stack.influxd_pid]
    neighbour_before = stack_status(stack.data_dir)  # the session stack runs beside it
    assert sorted(stack_down(own_stack.data_dir)) == ["influxd", "mosquitto"]
    for pid in ours:
        assert pid is not None and not _runs_from(pid, own_stack.data_dir)
    assert not (own_stack.data_dir / "mosquitto.pid").exists()
    assert stack_status(own_stack.data_dir)["running"] is False
    assert stack_down(own_stack.data_dir) == []
    assert stack_status(stack.data_dir) == neighbour_before
    assert neighbour_before["running"] is True


def test_down_never_kills_a_reused_pid(tmp_path: Path) -> None:
    # A process that merely has the right name, but not this stack's config, is left alone.
    impostor_bin = tmp_path / "influxd"
    shutil.copy("/bin/sleep", impostor_bin)
    impostor = subprocess.Popen([str(impostor_bin), "60"])
    try:
        (tmp_path / "influxd.pid").write_text(f"{impostor.pid}\n")
        (tmp_path / "mosquitto.pid").write_text(f"{os.getpid()}\n")
        assert stack_down(tmp_path) == []
        assert impostor.poll() is None
        assert stack_status(tmp_path)["running"] is False
    finally:
        impostor.kill()
        impostor.wait()


def test_up_replaces_a_crashed_server_on_the_same_port(own_stack: StackInfo) -> None:
    assert own_stack.influxd_pid is not None
    os.kill(own_stack.influxd_pid, signal.SIGKILL)
    wait_until(lambda: not influx_ping(own_stack), 10.0, "influxd gone after SIGKILL")
    again = stack_up(own_stack.data_dir)
    assert again.influxd_pid != own_stack.influxd_pid
    assert (again.mosquitto_pid, again.influx_port) == (own_stack.mosquitto_pid, own_stack.influx_port)


def test_a_killed_parent_takes_its_stack_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "orphan"
    # The restarted influxd (as in an outage test) must be tied to the parent like the first one.
    script = ("import sys, time; from pathlib import Path; from service.stack import *; "
              "d = Path(sys.argv[1]); info = stack_up(d, die_with_parent=True); "
              "stop_influxd(d); print(info.mosquitto_pid, start_influxd(d), flush=True); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_runs_from(pid, data_dir) for pid in pids)
    finally:
        parent.kill()  # SIGKILL: no teardown code runs in the parent
        parent.wait()
    try:
        wait_until(lambda: not any(_runs_from(pid, data_dir) for pid in pids), 15.0,
                   "servers gone with their parent")
    finally:
        stack_down(data_dir)


def test_cli_up_status_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "cli")
    try:
        assert cli_main(["up", "--data", data]) == 0
        out = capsys.readouterr().out.splitlines()
        assert re.fullmatch(r"mqtt://127\.0\.0\.1:\d+", out[0])
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", out[1])
        assert cli_main(["up", "--data", data]) == 0
        assert capsys.readouterr().out.splitlines() == out
        assert cli_main(["status", "--data", data]) == 0
        status = capsys.readouterr().out
        assert out[0] in status and out[1] in status and "stopped" not in status
        assert cli_main(["down", "--data", data]) == 0
        assert capsys.readouterr().out.strip() == "stopped mosquitto, influxd"
        assert cli_main(["status", "--data", data]) == 1
        assert cli_main(["down", "--data", data]) == 0
        assert "nothing running" in capsys.readouterr().out
    finally:
        stack_down(Path(data))


@pytest.mark.parametrize("argv", [[], ["sideways"], ["up", "--mqtt-port", "70000"], ["down", "--bogus"]])
def test_cli_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(argv) == 2
    if "70000" in argv:
        assert "--mqtt-port: '70000' is not a TCP port" in capsys.readouterr().err


def test_cli_refuses_a_port_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main(["up", "--data", str(tmp_path), "--mqtt-port", str(port)]) == 1
    assert f"--mqtt-port {port}: port already in use" in capsys.readouterr().err
    assert stack_down(tmp_path) == []


def test_cli_names_the_missing_package(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    assert cli_main(["up", "--data", str(tmp_path)]) == 1
    assert "mosquitto not found: apt-get install mosquitto" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "service.stack", "status", "--data", str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert proc.stdout.split()[:2] == ["mosquitto", "stopped"]
