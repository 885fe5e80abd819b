"""`bugnet init` and `bugnet demo`: the entry point and its arguments.

The CLI talks only to the public API through the gateway (`--url`, env `BUGNET_URL`), so it
works the same against `make up`, docker compose and a cluster. `main()` returns the exit
code; tests call it in-process with their own httpx transport.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from typing import TextIO

import httpx

from . import account as acc
from . import demo as dm
from . import output
from .client import DEFAULT_URL, Api, CliError
from .demo_data import MIN_SESSIONS, MIN_SNAPSHOTS, build_plan

DEMO_EMAIL = "demo@example.com"
EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("BUGNET_URL") or DEFAULT_URL,
                        help="the gateway's base URL (env BUGNET_URL; default %(default)s)")
    common.add_argument("--json", action="store_true",
                        help="print one JSON document instead of text (progress goes to stderr)")
    common.add_argument("--password",
                        help="the account's password (else env BUGNET_PASSWORD, else a prompt)")
    common.add_argument("--name", dest="display_name",
                        help="display name for a new account (default: from the email)")

    parser = argparse.ArgumentParser(
        prog="bugnet", description="Set up Bugnet through its public API.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = commands.add_parser(
        "init", parents=[common], help="create the first user and project; print the API key",
        description="Sign up (or log in), create the project (or reuse yours with that slug) "
                    "and print its API key with a ready-to-paste SDK submit. Safe to re-run.")
    init.add_argument("--email", default=os.environ.get("BUGNET_EMAIL"),
                      help="the account's email (env BUGNET_EMAIL)")
    init.add_argument("--project", required=True, help='the project\'s name, e.g. "My Game"')
    init.add_argument("--slug", help="the project's slug (default: from the name)")
    init.add_argument("--regenerate-key", action="store_true",
                      help="for an existing project: issue a new API key (the old one stops "
                           "working at once)")

    demo = commands.add_parser(
        "demo", parents=[common], help="load a demo project: bugs, three releases, regressions",
        description="Create the demo project and load bug reports, triage, sessions over "
                    "three releases and performance snapshots through the real endpoints, then "
                    "run regression detection. Safe to re-run.")
    demo.add_argument("--email", default=os.environ.get("BUGNET_EMAIL") or DEMO_EMAIL,
                      help="the account to own the demo (env BUGNET_EMAIL; default "
                           "%(default)s); signed up when it does not exist")
    demo.add_argument("--slug", default=dm.DEMO_SLUG, help="default %(default)s")
    demo.add_argument("--reset", action="store_true",
                      help="delete the project with that slug first and load the demo afresh")
    demo.add_argument("--sessions", type=int, default=MIN_SESSIONS, metavar="N",
                      help=f"sessions per release (at least {MIN_SESSIONS}, the crash-rate "
                           "rule's minimum; default %(default)s)")
    demo.add_argument("--snapshots", type=int, default=MIN_SNAPSHOTS, metavar="N",
                      help=f"performance snapshots per release (at least {MIN_SNAPSHOTS}; "
                           "default %(default)s)")
    demo.add_argument("--workers", type=int, default=8,
                      help="requests in flight at once (default %(default)s)")
    return parser


def resolve_password(args: argparse.Namespace, *, stdin: TextIO) -> str:
    password: str | None = args.password or os.environ.get("BUGNET_PASSWORD")
    if password:
        return str(password)
    if stdin.isatty():
        password = getpass.getpass(f"Password for {args.email}: ")
        if password:
            return password
    raise CliError("no password: pass --password (make: PASSWORD=...), set BUGNET_PASSWORD, "
                   "or run in a terminal to be asked")


def regenerate_command(args: argparse.Namespace) -> str:
    words = ["bugnet", "init", "--email", args.email, "--project", args.project]
    if args.slug:
        words += ["--slug", args.slug]
    if args.url != DEFAULT_URL:
        words += ["--url", args.url]
    return shlex.join([*words, "--regenerate-key"])


def run_init(args: argparse.Namespace, api: Api, out: TextIO) -> None:
    if not args.email:
        raise CliError("no email: pass --email or set BUGNET_EMAIL")
    slug = acc.check_slug(args.slug or acc.slugify(args.project))
    password = resolve_password(args, stdin=sys.stdin)
    account = acc.sign_in(api, email=args.email, password=password,
                          display_name=args.display_name)
    result = acc.ensure_project(api, name=args.project, slug=slug,
                                regenerate_key=args.regenerate_key)
    if args.json:
        doc = output.init_json(base_url=api.base_url, account=account, result=result)
        out.write(json.dumps(doc, indent=2) + "\n")
    else:
        out.write(output.init_text(base_url=api.base_url, account=account, result=result,
                                   regenerate_command=regenerate_command(args)) + "\n")


def run_demo(args: argparse.Namespace, api: Api, out: TextIO, err: TextIO) -> None:
    if args.sessions < MIN_SESSIONS:
        raise CliError(f"--sessions must be at least {MIN_SESSIONS}: the crash-rate regression "
                       f"needs {MIN_SESSIONS} sessions in each release")
    if args.snapshots < MIN_SNAPSHOTS:
        raise CliError(f"--snapshots must be at least {MIN_SNAPSHOTS}: the frame-time "
                       f"regression needs {MIN_SNAPSHOTS} snapshots in each release")
    if args.workers < 1:
        raise CliError("--workers must be at least 1")
    acc.check_slug(args.slug)

    def progress(message: str) -> None:
        err.write(message + "\n")
        err.flush()

    password = resolve_password(args, stdin=sys.stdin)
    started = time.monotonic()
    account = acc.sign_in(api, email=args.email, password=password,
                          display_name=args.display_name)
    plan = build_plan(sessions_per_release=args.sessions,
                      snapshots_per_release=args.snapshots)
    loader = dm.DemoLoader(api, account, slug=args.slug, plan=plan, workers=args.workers,
                           progress=progress)
    loaded, key = loader.prepare(name=dm.DEMO_NAME, reset=args.reset)
    if key is not None:
        loader.load(loaded, key, started=started)
    summary = loader.summary()
    links = dm.links(api, args.slug)
    if args.json:
        doc = output.demo_json(base_url=api.base_url, account=account, loaded=loaded,
                               summary=summary, links=links)
        out.write(json.dumps(doc, indent=2) + "\n")
        return
    numbers = {b["id"]: b.get("number")
               for b in api.list_all(f"/projects/{args.slug}/bugs")}
    out.write(output.demo_text(base_url=api.base_url, account=account, loaded=loaded,
                               summary=summary, links=links, bug_numbers=numbers) + "\n")


def main(argv: Sequence[str] | None = None, *, transport: httpx.BaseTransport | None = None,
         stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        with Api(args.url, transport=transport) as api:
            if args.command == "init":
                run_init(args, api, out)
            else:
                run_demo(args, api, out, err)
    except CliError as exc:
        err.write(f"bugnet {args.command}: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.write(f"bugnet {args.command}: interrupted\n")
        return 130
    return 0
