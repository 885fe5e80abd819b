"""`bugnet-stack up|down|status|logs|ctl|reload-gateway`: the commands behind `make up`,
`make down`, ..."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from bugnet_stack.config import Ports
from bugnet_stack.errors import StackError
from bugnet_stack.stack import Stack, tail

EXIT_NOT_RUNNING = 3


def _say(line: str) -> None:
    print(line, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bugnet-stack", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where data, logs and sockets live (env BUGNET_DATA_DIR; default .bugnet/ in the repo root)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start everything and wait until it is healthy")
    up.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for health (default 180)"
    )
    for name in Ports.names():
        up.add_argument(
            Ports.cli_flag(name),
            dest=f"port_{name}",
            type=int,
            metavar="PORT",
            help=f"default {getattr(Ports(), name)}, env {Ports.env_var(name)}",
        )

    down = commands.add_parser("down", help="stop everything `up` started")
    down.add_argument("--timeout", type=float, default=60.0)

    commands.add_parser("status", help="each process's state and health")
    commands.add_parser(
        "reload-gateway",
        help="re-render Envoy's config (BUGNET_RATE_LIMIT_* as set now) and restart Envoy alone")

    logs = commands.add_parser("logs", help="tail the logs (all, or the named ones)")
    logs.add_argument(
        "names", nargs="*", metavar="NAME", help="e.g. auth-api, bugs-migrate, postgres"
    )
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("-f", "--follow", action="store_true")

    ctl = commands.add_parser("ctl", help="run supervisorctl against this stack's supervisord")
    ctl.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            return _up(args)
        stack = Stack(data_dir=args.data_dir, echo=_say)
        if args.command == "down":
            return _down(stack, args.timeout)
        if args.command == "status":
            return _status(stack)
        if args.command == "reload-gateway":
            stack.reload_gateway()
            return 0
        if args.command == "logs":
            return _logs(stack, args.names, args.lines, args.follow)
        return _ctl(stack, args.args)
    except StackError as exc:
        print(f"bugnet-stack: {exc}", file=sys.stderr, flush=True)
        return 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # One interruption is enough: let the cleanup that follows run to the end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _up(args: argparse.Namespace) -> int:
    ports = Ports.from_env(**{name: getattr(args, f"port_{name}") for name in Ports.names()})
    stack = Stack(data_dir=args.data_dir, ports=ports, echo=_say)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        stack.up(timeout=args.timeout)
    except KeyboardInterrupt:
        print(
            "bugnet-stack: interrupted; everything that was started has been stopped",
            file=sys.stderr,
        )
        return 130
    except StackError as exc:
        print(f"bugnet-stack: {exc}", file=sys.stderr)
        print(f"bugnet-stack: logs are in {stack.log_dir}", file=sys.stderr, flush=True)
        return 1
    return 0


def _down(stack: Stack, timeout: float) -> int:
    pid = stack.supervisor.pid()
    if not stack.down(timeout=timeout):
        _say(f"Bugnet is not running (data in {stack.data_dir})")
        return 0
    _say(
        f"Bugnet is down (supervisord pid {pid} and its processes stopped; data kept in {stack.data_dir})"
    )
    return 0


def _status(stack: Stack) -> int:
    if not stack.is_up():
        _say(f"Bugnet is not running (data in {stack.data_dir})")
        return EXIT_NOT_RUNNING
    rows = stack.status()
    _say(f"{'NAME':<20} {'STATE':<9} {'PID':>7} {'UPTIME':>9}  HEALTH")
    for row in rows:
        uptime = time.strftime("%H:%M:%S", time.gmtime(row.uptime)) if row.uptime else "-"
        mark = "ok  " if row.healthy else "FAIL"
        _say(f"{row.name:<20} {row.state:<9} {row.pid or '-':>7} {uptime:>9}  {mark} {row.health}")
    _say(f"supervisord pid {stack.supervisor.pid()}, logs in {stack.log_dir}")
    endpoints = stack.metrics_endpoints()
    if endpoints:
        _say("metrics (Prometheus text; not behind the gateway):")
        for name, url in endpoints.items():
            _say(f"  {name:<18} {url}")
    return 0 if all(r.healthy for r in rows) else 1


def _logs(stack: Stack, names: list[str], lines: int, follow: bool) -> int:
    files = stack.log_files()
    if not files:
        _say(f"no logs yet in {stack.log_dir}")
        return 0
    unknown = [n for n in names if n not in files]
    if unknown:
        raise StackError(f"no log named {', '.join(unknown)}; there are: {', '.join(files)}")
    chosen = {n: files[n] for n in names} if names else files
    for name, path in chosen.items():
        _say(f"==> {name} ({path}) <==")
        text = tail(path, lines)
        if text:
            _say(text)
    if follow:
        _follow(chosen)
    return 0


def _follow(files: dict[str, Path]) -> None:
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    try:
        while True:
            for name, path in files.items():
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if size < offsets[name]:  # rotated
                    offsets[name] = 0
                if size > offsets[name]:
                    with path.open("rb") as f:
                        f.seek(offsets[name])
                        data = f.read()
                    offsets[name] += len(data)
                    for line in data.decode("utf-8", errors="replace").splitlines():
                        _say(f"{name:<20} | {line}")
            time.sleep(0.3)
    except KeyboardInterrupt:
        return


def _ctl(stack: Stack, args: list[str]) -> int:
    if not stack.supervisor.conf.exists():
        raise StackError(f"no stack has been started in {stack.data_dir}")
    supervisorctl = Path(sys.executable).parent / "supervisorctl"
    os.execv(supervisorctl, [str(supervisorctl), "-c", str(stack.supervisor.conf), *args])


if __name__ == "__main__":
    sys.exit(main())
