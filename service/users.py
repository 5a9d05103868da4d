"""``safewatch users add|list|disable|passwd``: accounts in the state database (contract section 9).

The state database comes from Settings as for ``serve`` (``SAFEWATCH_STATE_URL``, ``.env``, or
``--state-url``); ``--config`` checks departments and site ids against the district. Every change
is written to the audit trail with the actor ``cli:{OS user}`` (whoever can run this can open
the database, so the role recorded is ``admin``) and no client address.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
from typing import TextIO

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
ROLE_CHOICES = ("viewer", "operator", "admin", "site")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="accounts of people: add, list, disable, passwd")
    cmd = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = cmd.add_parser("add", help="create an account (prints a generated password unless --password-stdin)")
    add.add_argument("--config", required=True, help="district config (YAML): checks --department and --sites")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=ROLE_CHOICES)
    add.add_argument("--department", default=None, help="needed for viewer and operator")
    add.add_argument("--sites", default=None, help="comma-separated site ids; needed for site")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    lst = cmd.add_parser("list", help="list accounts")
    lst.add_argument("--config", required=True, help="district config (YAML)")
    dis = cmd.add_parser("disable", help="disable an account; its sessions end at once")
    dis.add_argument("name", metavar="NAME")
    pw = cmd.add_parser("passwd", help="set a new password (prints a generated one unless --password-stdin)")
    pw.add_argument("name", metavar="NAME")
    pw.add_argument("--password-stdin", action="store_true")
    for p in (add, lst, dis, pw):
        p.add_argument("--state-url", default=None, help="overrides SAFEWATCH_STATE_URL")
        if p is not add and p is not lst:
            p.add_argument("--config", default=None, help="district config (YAML); not needed")


def _password(from_stdin: bool, stdin: TextIO) -> tuple[str, bool]:
    """(password, generated)."""
    if from_stdin:
        return stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


def _fail(message: str, code: int) -> int:
    print(f"safewatch users: {message}", file=sys.stderr)
    return code


def run_users(args: argparse.Namespace, stdin: TextIO = sys.stdin) -> int:
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from domain import ConfigError, load_district
    from domain.settings import Settings
    from store.state import StateStore
    from store.state.people import UserExists
    from store.state.people_rules import check_account, check_password

    district = None
    if args.config:
        try:
            district = load_district(args.config)
        except ConfigError as err:
            return _fail(str(err), EXIT_USAGE)
    try:
        settings = Settings(**({"state_url": args.state_url} if args.state_url else {}))
    except ValidationError as err:
        return _fail(f"settings: {err.errors()[0]['msg']}", EXIT_USAGE)
    actor = f"cli:{getpass.getuser()}"
    try:
        state = StateStore(settings.state_url)
    except (ValueError, SQLAlchemyError) as err:
        return _fail(f"SAFEWATCH_STATE_URL: cannot open the state database: {str(err).splitlines()[0]}",
                     EXIT_FAILURE)
    try:
        def audit(action: str, target: str, detail: str = "") -> None:
            state.record_audit(actor=actor, role="admin", action=action, target=target, detail=detail)

        command = args.users_command
        if command == "list":
            for u in state.list_users():
                where = u.department or ",".join(u.sites) or "-"
                print(f"{u.username}\t{u.role}\t{where}\t{'disabled' if u.disabled else 'active'}")
            return EXIT_OK
        if command == "add":
            assert district is not None
            sites = [s.strip() for s in args.sites.split(",") if s.strip()] if args.sites else []
            try:
                department, site_ids = check_account(args.role, args.department, sites, district.departments,
                                                     district.sites)
            except ValueError as err:
                return _fail(f"{args.config}: --{err}", EXIT_USAGE)
            password, generated = _password(args.password_stdin, stdin)
            try:
                check_password(password)
                user = state.create_user(username=args.name, role=args.role, password=password,
                                         department=department, sites=site_ids)
            except UserExists as err:
                return _fail(str(err), EXIT_FAILURE)
            except ValueError as err:
                return _fail(str(err), EXIT_USAGE)
            audit("user.create", f"user:{user.username}",
                  f"role {user.role}, department {user.department or '-'}, sites {','.join(user.sites) or '-'}")
            print(f"created {user.username} ({user.role})" + (f"; password: {password}" if generated else ""))
            return EXIT_OK
        if command == "disable":
            if state.update_user(args.name, disabled=True) is None:
                return _fail(f"user {args.name!r} not found", EXIT_FAILURE)
            audit("user.update", f"user:{args.name}", "disabled")
            print(f"disabled {args.name}; its sessions have ended")
            return EXIT_OK
        if command == "passwd":
            password, generated = _password(args.password_stdin, stdin)
            try:
                changed = state.update_user(args.name, password=password)
            except ValueError as err:
                return _fail(str(err), EXIT_USAGE)
            if changed is None:
                return _fail(f"user {args.name!r} not found", EXIT_FAILURE)
            audit("user.update", f"user:{args.name}", "password changed")
            print(f"password of {args.name} changed; its sessions have ended"
                  + (f"; new password: {password}" if generated else ""))
            return EXIT_OK
        return EXIT_USAGE
    except SQLAlchemyError as err:
        return _fail(f"state database: {type(err).__name__}: {str(err).splitlines()[0]}", EXIT_FAILURE)
    finally:
        state.close()
