"""The bench run: stack up, ceilings, ``serve`` under load, JSON summary last; everything torn down."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from service.bench.ceilings import broker_ceiling, influx_ceiling
from service.bench.district import BenchDistrict, from_config, synthetic
from service.bench.measure import measure_serve
from service.pgstack import PgError, PgServer
from service.stack import stack_down, stack_up

DEFAULT_RATE = 16_000.0
STATE_DB = "safewatch_bench"


def _say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _district(args: argparse.Namespace, data: Path) -> BenchDistrict:
    data.mkdir(parents=True, exist_ok=True)
    config = getattr(args, "config", None)
    return from_config(Path(config), data) if config else synthetic(data)


def run_bench(args: argparse.Namespace) -> int:
    processes = int(getattr(args, "processes", 1) or 1)
    if processes < 1:
        print(f"safewatch bench: --processes {processes}: expected 1 or more", file=sys.stderr)
        return 2
    kill_one = bool(getattr(args, "kill_one", False))
    if kill_one and processes < 2:
        print("safewatch bench: --kill-one needs --processes 2 or more", file=sys.stderr)
        return 2
    data = Path(args.data) if args.data else Path(tempfile.mkdtemp(prefix="safewatch-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    publishers = args.publishers or 2
    try:
        bench = _district(args, data / "serve")
    except (OSError, ValueError) as exc:  # ConfigError is a ValueError and names file and path
        print(f"safewatch bench: --config: {exc}", file=sys.stderr)
        return 2
    pg: PgServer | None = None
    stack = stack_up(data / "stack", die_with_parent=True)
    result: dict[str, Any] = {"duration_s": args.duration, "publishers": publishers, "mqtt_protocol": "3.1.1",
                              "district": bench.name, "config": getattr(args, "config", None)}
    try:
        if processes > 1:
            _say("starting PostgreSQL for the shared state database ...")
            pg = PgServer()
            pg.start()
            state_url = pg.create_database(STATE_DB)
        else:
            state_url = f"sqlite:///{data / 'serve' / 'state.db'}"
        _say("measuring the broker ceiling ...")
        series = [("gas_station", f"S-{n:04d}", f"d{d}") for n in range(300) for d in (1, 2)]
        warmup = min(8.0, max(2.0, args.duration / 3))  # each ceiling: a few seconds is enough
        ceiling, load = broker_ceiling(stack, series, warmup, publishers)
        result["broker_ceiling_per_s"] = round(ceiling)
        result["publisher_max_per_s"] = round(load.rate_per_s)
        _say("measuring the InfluxDB ceiling ...")
        result["influx_ceiling_per_s"] = round(influx_ceiling(stack, warmup))
        offered = args.rate if args.rate else DEFAULT_RATE
        rate = None if offered == float("inf") else offered  # None: as fast as the publishers go
        result["offered_rate_per_s"] = "max" if rate is None else rate
        _say(f"{processes} serve process(es) under {offered:.0f} readings/s for {args.duration:g}s "
             f"({len(bench.series)} series, {bench.rules} rules) ...")
        result |= measure_serve(stack, data / "serve", bench, state_url, processes, rate, args.duration,
                                publishers, kill_one)
    except PgError as exc:
        print(f"safewatch bench: --processes {processes}: {exc}", file=sys.stderr)
        return 1
    finally:
        stack_down(data / "stack")
        if pg is not None:
            pg.destroy()
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)
    print(json.dumps(result))
    return 0 if result.get("lost", 1) == 0 else 1
