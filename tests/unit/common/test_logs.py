"""JSON log lines carry the service and the gateway's request id."""

from __future__ import annotations

import json
import logging

import pytest

from bugnet_common.logs import bind_request, configure_logging


def test_log_lines_are_json_with_service_and_request_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("auth", "INFO")
    configure_logging("auth", "INFO")  # a second app in one process adds no second handler
    bind_request("req-123")
    try:
        logging.getLogger("bugnet.test").info("user signed in", extra={"user_id": "u1"})
    finally:
        bind_request(None)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    ours = [line for line in lines if line.get("message") == "user signed in"]
    assert len(ours) == 1
    line = ours[0]
    assert line["service"] == "auth" and line["request_id"] == "req-123"
    assert line["level"] == "INFO" and line["user_id"] == "u1" and "time" in line
