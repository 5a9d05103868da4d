"""The ``safewatch`` command: stack, serve, simulate, demo, bench, check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.users import add_parser as users_parser

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="safewatch", description="IoT monitoring and alerting for work safety")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("stack", help="start, stop or inspect a local Mosquitto and InfluxDB", add_help=False)

    serve = sub.add_parser("serve", help="run the backend: ingest, alerting, API")
    serve.add_argument("--config", required=True, help="district config (YAML)")
    serve.add_argument("--dev", action="store_true", help="generate an admin token if none is set")
    _settings_flags(serve)

    check = sub.add_parser("check", help="validate a district config and exit")
    check.add_argument("--config", required=True)

    sim = sub.add_parser("simulate", help="publish realistic readings for every site")
    sim.add_argument("--config", required=True)
    sim.add_argument("--rate", type=float, default=None, help="messages per second in all (default: realistic)")
    sim.add_argument("--scenario", action="append", default=[], metavar="NAME", help="inject an incident")
    sim.add_argument("--duration", type=float, default=None, help="seconds; default: until Ctrl-C")
    sim.add_argument("--seed", type=int, default=None)
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    sim.add_argument("--list-scenarios", action="store_true")
    sim.add_argument("--mqtt-url", default=None)
    sim.add_argument("--api", default=None, metavar="URL",
                     help="serve's HTTP API (http://HOST:PORT), for the hazard scenarios (self-report, overdue-climb)")
    sim.add_argument("--token", default=None, metavar="TOKEN",
                     help="the admin token for --api (default: SAFEWATCH_ADMIN_TOKEN)")

    demo = sub.add_parser("demo", help="the whole system on one machine with configs/xicheng.yaml")
    demo.add_argument("--config", default=None)
    demo.add_argument("--data", default=None, help="stack and state directory (default ./var/demo)")
    demo.add_argument("--duration", type=float, default=None, help="seconds; default: until Ctrl-C")
    demo.add_argument("--plain", action="store_true", help="print lines instead of the live view")

    users_parser(sub)

    bench = sub.add_parser("bench", help="measure throughput, loss, alert latency, memory")
    bench.add_argument("--duration", type=float, default=30.0)
    bench.add_argument("--rate", type=_bench_rate, default=None,
                       help="offered load in messages/s, or max: as fast as the publishers go (default: 16000)")
    bench.add_argument("--publishers", type=int, default=None)
    bench.add_argument("--data", default=None)
    bench.add_argument("--config", default=None, help="load this district's sites and rules (default: synthetic)")
    bench.add_argument("--processes", type=int, default=1,
                       help="serve processes sharing a PostgreSQL state database and as many partitions")
    bench.add_argument("--kill-one", action="store_true",
                       help="SIGKILL one serve process halfway and report takeover_s")
    return p


def _bench_rate(text: str) -> float:
    """``--rate``: a positive number of messages/s, or ``max`` (infinity: no pacing)."""
    if text.strip().lower() == "max":
        return float("inf")
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected messages/s or max") from None
    if not rate > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive rate or max")
    return rate


def _settings_flags(p: argparse.ArgumentParser) -> None:
    for flag in ("mqtt-url", "influx-url", "influx-db", "influx-token", "state-url", "api-host",
                 "admin-token", "data-dir"):
        p.add_argument(f"--{flag}", default=None, help=f"overrides SAFEWATCH_{flag.upper().replace('-', '_')}")
    p.add_argument("--api-port", type=int, default=None, help="overrides SAFEWATCH_API_PORT")


def _check(path: str) -> int:
    from domain import ConfigError, load_district

    try:
        district = load_district(path)
    except ConfigError as err:
        print(f"safewatch: {err}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: ok: district {district.name!r}, {len(district.sites)} sites, {len(district.rules)} rules")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["stack"]:
        from service.stack import cli_main

        return cli_main(args_list[1:])
    try:
        args = _parser().parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        if args.command == "check":
            return _check(args.config)
        if args.command == "serve":
            from service.serve import run_serve

            return int(run_serve(args))
        if args.command == "simulate":
            from service.simulate import run_simulate

            return int(run_simulate(args))
        if args.command == "demo":
            from service.demo import run_demo

            return int(run_demo(args))
        if args.command == "users":
            from service.users import run_users

            return run_users(args)
        if args.command == "bench":
            from service.bench import run_bench

            return int(run_bench(args))
    except KeyboardInterrupt:
        return EXIT_OK
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
