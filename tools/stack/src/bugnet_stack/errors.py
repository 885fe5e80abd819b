"""The launcher's errors: each message is meant to be printed as is to the person running it."""

from __future__ import annotations


class StackError(Exception):
    """Something the person running the stack has to act on."""


class PortInUse(StackError):
    """A port the stack needs is already bound on 127.0.0.1."""

    def __init__(self, *, port: int, label: str, env_var: str, flag: str) -> None:
        self.port = port
        self.env_var = env_var
        super().__init__(
            f"port {port} ({label}) is already in use on 127.0.0.1: stop whatever holds it, "
            f"or pick another port with {env_var}=<port> (or {flag} <port>)"
        )


class StartupFailed(StackError):
    """A process did not become ready; carries the tail of its log."""

    def __init__(self, *, name: str, reason: str, log_tail: str = "", log_path: str = "") -> None:
        self.name = name
        self.reason = reason
        self.log_tail = log_tail
        message = f"{name}: {reason}"
        if log_path:
            message += f"\n--- last lines of {log_path} ---\n{log_tail.rstrip()}\n---"
        super().__init__(message)
