"""/healthz (the process answers) and /readyz (its dependencies answer)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

log = logging.getLogger(__name__)

Check = tuple[str, Callable[[], None]]


def health_blueprint(checks: Sequence[Check]) -> Blueprint:
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify({"ok": True, "data": {"status": "ok"}})

    @bp.get("/readyz")
    def readyz() -> ResponseReturnValue:
        failed: dict[str, str] = {}
        for name, check in checks:
            try:
                check()
            except Exception as exc:  # a readiness probe reports, it does not raise
                log.warning("readiness check failed", extra={"check": name, "error": str(exc)})
                failed[name] = type(exc).__name__
        if failed:
            names = ", ".join(sorted(failed))
            return jsonify({"ok": False, "error": f"Not ready: {names} unavailable",
                            "code": "service_unavailable", "details": failed}), 503
        return jsonify({"ok": True, "data": {"status": "ready", "checks": [n for n, _ in checks]}})

    return bp
