"""``safewatch simulate``: a living district on the broker, with incidents on request."""

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

from pydantic import ValidationError

from domain.config import ConfigError
from domain.district import District, load_district
from domain.settings import Settings
from simulators.fleet import SimOptions, Simulation, SimulationError
from simulators.scenarios import ScenarioContext, ScenarioError, parse_scenario, scenario_list
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


def build(args: argparse.Namespace, district: District) -> tuple[Simulation, int]:
    """The simulation the flags describe, and the seed it uses (printed so a run can be repeated)."""
    _check_numbers(args)
    url = mqtt_url(args.mqtt_url)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    ctx = ScenarioContext(district, seed=seed)
    scenarios = [parse_scenario(spec, ctx) for spec in args.scenario]
    options = SimOptions(mqtt_url=url, speed=args.speed, rate=args.rate, duration_s=args.duration, seed=seed)
    return Simulation(district, scenarios, options, on_note=_note), seed


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
        sim, seed = build(args, district)
    except (ConfigError, ScenarioError, UsageError) as err:
        print(f"safewatch simulate: {err}", file=sys.stderr)
        return EXIT_USAGE
    # A broker outage would print one warning per device; the summary counts what was buffered.
    logging.getLogger("transport.mqtt").setLevel(logging.ERROR)
    stop = threading.Event()
    with stop_on_sigterm(stop):  # from here on, SIGTERM ends the run like Ctrl-C
        try:
            sim.connect()
        except (SimulationError, MqttError) as err:
            print(f"safewatch simulate: {err}", file=sys.stderr)
            return EXIT_FAILURE
        _announce(sim, args, seed)
        try:
            sim.run(stop)
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the run; the devices still switch off properly
        finally:
            sim.close()
    print(sim.summary().line(), flush=True)
    return EXIT_OK


def _announce(sim: Simulation, args: argparse.Namespace, seed: int) -> None:
    district = sim.district
    pace = f"{args.rate:g} messages/s" if args.rate else f"one reading per device every {sim.options.cadence_s:g} s"
    _note(f"{district.name}: {len(district.sites)} sites, {len(sim.devices)} devices → {sim.options.mqtt_url}; "
          f"{pace}, clock ×{args.speed:g}, seed {seed}" + (f", for {args.duration:g} s" if args.duration else ""))
    for sc in sim.scenarios:
        _note(f"scenario {sc.label} at +{sc.start_s:g} s (simulated): {sc.summary}")
