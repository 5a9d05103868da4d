"""``safewatch simulate``: a living district on the broker, with incidents on request.

The hazard scenarios (``self-report``, ``overdue-climb``) are played through serve's HTTP API as
the enterprise, not by the devices: they need ``--api URL`` and the admin token (``--token`` or
``SAFEWATCH_ADMIN_TOKEN``), checked before anything starts.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import ValidationError

from domain.config import ConfigError
from domain.district import District, load_district
from domain.settings import Settings
from simulators.fleet import SimOptions, Simulation, SimulationError
from simulators.scenarios import ApiScenario, ScenarioContext, ScenarioError, parse_scenario, scenario_list
from simulators.scenarios.supervision import ApiPlayer, HazardScenarioError, check_api
from transport.mqtt import MqttError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A flag or setting the simulation cannot use; the message names it."""


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value in (("--speed", args.speed), ("--rate", args.rate), ("--duration", args.duration)):
        if value is not None and not value > 0:
            raise UsageError(f"{flag} {value:g}: must be a positive number")


def mqtt_url(flag: str | None) -> str:
    """--mqtt-url, else SAFEWATCH_MQTT_URL (or .env), else the contract's default; validated."""
    try:
        return (Settings(mqtt_url=flag) if flag else Settings()).mqtt_url
    except ValidationError as err:
        problem = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise UsageError(problem if not flag else problem.replace("SAFEWATCH_MQTT_URL=", "--mqtt-url ")) from None


@dataclass(frozen=True)
class ApiPlan:
    """The hazard scenarios asked for, and where and as whom they are played."""

    url: str
    token: str
    scenarios: list[ApiScenario]


def api_plan(args: argparse.Namespace, scenarios: list[ApiScenario]) -> ApiPlan | None:
    """--api and the admin token, checked as far as can be without asking the API; None when no
    scenario needs them."""
    if not scenarios:
        return None
    names = ", ".join(sc.name for sc in scenarios)
    if not args.api:
        raise UsageError(f"--scenario {names}: played through serve's HTTP API as the enterprise, not by the "
                         "devices: give --api URL (e.g. http://127.0.0.1:8080) and the admin token "
                         "(--token TOKEN or SAFEWATCH_ADMIN_TOKEN)")
    parts = urlsplit(args.api)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--api {args.api!r}: expected http://HOST:PORT or https://HOST:PORT")
    token = args.token
    if not token:
        try:
            token = Settings().admin_token
        except ValidationError:
            token = None  # another SAFEWATCH_ variable is wrong; named where it is used
    if not token:
        raise UsageError(f"--api {args.api}: needs the admin token (--token TOKEN or SAFEWATCH_ADMIN_TOKEN): "
                         f"the hazard scenarios ({names}) create the enterprise's account")
    return ApiPlan(args.api.rstrip("/"), token, scenarios)


def build(args: argparse.Namespace, district: District) -> tuple[Simulation, ApiPlan | None, int]:
    """The simulation the flags describe, the hazard scenarios for the API, and the seed it uses
    (printed so a run can be repeated)."""
    _check_numbers(args)
    url = mqtt_url(args.mqtt_url)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    ctx = ScenarioContext(district, seed=seed)
    scenarios = [parse_scenario(spec, ctx) for spec in args.scenario]
    plan = api_plan(args, [sc for sc in scenarios if isinstance(sc, ApiScenario)])
    devices = [sc for sc in scenarios if not isinstance(sc, ApiScenario)]
    options = SimOptions(mqtt_url=url, speed=args.speed, rate=args.rate, duration_s=args.duration, seed=seed)
    return Simulation(district, devices, options, on_note=_note), plan, seed


def _note(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C does (only the main thread may set signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_simulate(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        print(scenario_list())
        return EXIT_OK
    try:
        district = load_district(args.config)
        sim, plan, seed = build(args, district)
    except (ConfigError, ScenarioError, UsageError) as err:
        print(f"safewatch simulate: {err}", file=sys.stderr)
        return EXIT_USAGE
    if plan is not None:
        try:
            check_api(plan.url, plan.token)
        except HazardScenarioError as err:
            print(f"safewatch simulate: --api/--token: {err}", file=sys.stderr)
            return EXIT_FAILURE
    # A broker outage would print one warning per device; the summary counts what was buffered.
    logging.getLogger("transport.mqtt").setLevel(logging.ERROR)
    stop = threading.Event()
    player: ApiPlayer | None = None
    with stop_on_sigterm(stop):  # from here on, SIGTERM ends the run like Ctrl-C
        try:
            sim.connect()
        except (SimulationError, MqttError) as err:
            print(f"safewatch simulate: {err}", file=sys.stderr)
            return EXIT_FAILURE
        _announce(sim, args, seed, plan)
        if plan is not None:
            player = ApiPlayer(plan.url, plan.token, district, plan.scenarios, _note, speed=args.speed).start()
        try:
            sim.run(stop)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the run; the devices still switch off properly
        finally:
            sim.close()
            failures = player.finish() if player is not None else []
    print(sim.summary().line(), flush=True)
    for failure in failures:
        print(f"safewatch simulate: {failure}", file=sys.stderr)
    return EXIT_FAILURE if failures else EXIT_OK


def _announce(sim: Simulation, args: argparse.Namespace, seed: int, plan: ApiPlan | None) -> None:
    district = sim.district
    pace = f"{args.rate:g} messages/s" if args.rate else f"one reading per device every {sim.options.cadence_s:g} s"
    _note(f"{district.name}: {len(district.sites)} sites, {len(sim.devices)} devices → {sim.options.mqtt_url}; "
          f"{pace}, clock ×{args.speed:g}, seed {seed}" + (f", for {args.duration:g} s" if args.duration else ""))
    for sc in sim.scenarios:
        _note(f"scenario {sc.label} at +{sc.start_s:g} s (simulated): {sc.summary}")
    if plan is not None:
        for sc in plan.scenarios:
            _note(f"scenario {sc.label} at +{sc.start_s:g} s (simulated) through {plan.url}: {sc.summary}")
