"""``safewatch simulate`` from the command line: refusals with exit 2, a real run, a clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from service.cli import main
from service.stack import StackInfo, free_port
from simulators.scenarios import SCENARIOS
from simulators.tap import Tap
from transport.mqtt import Message

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = str(REPO / "tests" / "contract_example.yaml")


def simulate(*args: str) -> int:
    return main(["simulate", *args])


def test_list_scenarios(capsys):
    assert simulate("--config", EXAMPLE, "--list-scenarios") == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == list(SCENARIOS)


@pytest.mark.parametrize(("text", "message"), [
    (None, "cannot read the file"),
    ("district: x\ndepartments: [{id: a, name: A, kind: sector}]\nsurprise: 1\n", "surprise: unknown key"),
    ("district: [unclosed\n", "YAML syntax error"),
])
def test_a_bad_config_exits_2_naming_the_file(tmp_path, capsys, text, message):
    path = tmp_path / "district.yaml"
    if text is not None:
        path.write_text(text)
    assert simulate("--config", str(path)) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--speed", "0"], "--speed 0: must be a positive number"),
    (["--rate", "-5"], "--rate -5: must be a positive number"),
    (["--duration", "0"], "--duration 0: must be a positive number"),
    (["--mqtt-url", "http://broker"], "--mqtt-url 'http://broker': expected mqtt://"),
    (["--scenario", "meltdown"], "--scenario meltdown: unknown scenario 'meltdown'"),
    (["--scenario", "flooding"], "--scenario flooding: "),       # the example has no underground site
    (["--scenario", "crowd-surge:GS-001"], "is a gas_station, crowd-surge needs a crowd_venue"),
])
def test_bad_flags_exit_2_naming_the_flag(capsys, flags, message):
    assert simulate("--config", EXAMPLE, *flags) == 2
    assert message in capsys.readouterr().err


def test_a_bad_environment_url_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("SAFEWATCH_MQTT_URL", "tcp://x")
    assert simulate("--config", EXAMPLE) == 2
    assert "SAFEWATCH_MQTT_URL='tcp://x'" in capsys.readouterr().err


def test_no_broker_exits_1_saying_where_it_looked(capsys):
    url = f"mqtt://127.0.0.1:{free_port()}"
    assert simulate("--config", EXAMPLE, "--mqtt-url", url, "--duration", "1") == 1
    err = capsys.readouterr().err
    assert url in err and "--mqtt-url" in err


def test_a_run_publishes_every_device_at_the_cadence(stack: StackInfo, district, tmp_path, monkeypatch, capsys):
    config = tmp_path / "district.yaml"
    config.write_text(Path(EXAMPLE).read_text().replace("district: xicheng", f"district: {district}"))
    monkeypatch.setenv("SAFEWATCH_MQTT_URL", stack.mqtt_url)  # the flag's fallback
    with Tap(stack.mqtt_url, [f"{district}/#"]) as tap:
        started = time.time() * 1000
        assert simulate("--config", str(config), "--duration", "6", "--seed", "4") == 0
        ended = time.time() * 1000
        assert tap.wait_for(lambda ms: sum(m.topic.endswith("/status") for m in ms) >= 6, 10)
    out = capsys.readouterr().out
    assert out.startswith("simulate: 3 devices published ")
    telemetry = [m for m in tap.messages() if m.topic.endswith("/telemetry")]
    topics = {m.topic for m in telemetry}
    assert topics == {f"{district}/gas_station/GS-001/vapor-1/telemetry",
                      f"{district}/gas_station/GS-001/tank-1/telemetry",
                      f"{district}/crowd_venue/CV-001/counter-1/telemetry"}
    per_device = len(telemetry) / 3
    assert 1 <= per_device <= 2, "one reading every 5 s for 6 s"
    for m in telemetry:
        body = json.loads(m.payload)
        assert set(body) == {"ts", "values"} and started - 5000 <= body["ts"] <= ended
    assert f"published {len(telemetry)} readings" in out


def test_rate_sets_the_fleet_s_messages_per_second(stack: StackInfo, district, tmp_path, capsys):
    config = tmp_path / "district.yaml"
    config.write_text(Path(EXAMPLE).read_text().replace("district: xicheng", f"district: {district}"))
    assert simulate("--config", str(config), "--mqtt-url", stack.mqtt_url, "--rate", "150", "--duration", "4",
                    "--speed", "20", "--seed", "1") == 0
    published = int(capsys.readouterr().out.split(" readings")[0].rsplit(" ", 1)[1])
    assert 500 <= published <= 620, "150 messages/s for 4 s"


def test_sigterm_stops_the_console_script_cleanly(stack: StackInfo, district, tmp_path):
    config = tmp_path / "district.yaml"
    config.write_text(Path(EXAMPLE).read_text().replace("district: xicheng", f"district: {district}"))
    def statuses(ms: list[Message]) -> int:
        return sum(m.topic.endswith("/status") for m in ms)

    with Tap(stack.mqtt_url, [f"{district}/+/+/+/status", f"{district}/+/+/+/telemetry"]) as tap:
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "simulate", "--config", str(config),
                                 "--mqtt-url", stack.mqtt_url, "--scenario", "vapor-leak"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # Online, and the run's first readings out (so its scenario has started), then SIGTERM.
            assert tap.wait_for(lambda ms: statuses(ms) >= 3 and len(ms) > statuses(ms), 20), \
                "three devices online and publishing"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert tap.wait_for(lambda ms: statuses(ms) >= 6, 10), "and offline again"
    assert proc.returncode == 0, err
    assert "vapor-leak@GS-001: running" in out
    assert "scenario vapor-leak@GS-001 at +0 s" in err


@pytest.mark.parametrize(("flags", "message"), [
    (["--scenario", "self-report"], "--scenario self-report: played through serve's HTTP API"),
    (["--scenario", "vapor-leak", "--scenario", "overdue-climb:GS-001"], "give --api URL"),
    (["--scenario", "overdue-climb", "--api", "127.0.0.1:8080", "--token", "t"],
     "--api '127.0.0.1:8080': expected http://HOST:PORT"),
    (["--scenario", "self-report", "--api", "http://127.0.0.1:8080"], "needs the admin token (--token TOKEN or"),
])
def test_hazard_scenarios_need_the_api_and_the_admin_token(monkeypatch, capsys, flags, message):
    monkeypatch.delenv("SAFEWATCH_ADMIN_TOKEN", raising=False)
    monkeypatch.chdir(REPO / "tests")  # no .env here to supply a token
    assert simulate("--config", EXAMPLE, *flags) == 2
    assert message in capsys.readouterr().err


def test_an_unreachable_api_exits_1_before_any_device_starts(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert simulate("--config", EXAMPLE, "--scenario", "self-report", "--api", url, "--token", "t",
                    "--mqtt-url", f"mqtt://127.0.0.1:{free_port()}") == 1
    err = capsys.readouterr().err
    assert f"cannot reach the API at {url}" in err and "--api" in err
