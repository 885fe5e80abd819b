"""The one envelope every message carries (CloudEvents names) and the payload contracts.

Payloads are plain data classes; within v1 only additive changes: consumers ignore fields they
do not know, producers never remove or retype one.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    type: str  # the subject
    source: str  # producing service
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    version: str = "v1"
    time: str = field(default_factory=lambda: isoformat(utcnow()))
    correlation_id: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Event:
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not {"id", "type", "source", "data"} <= doc.keys():
            raise ValueError("not an event envelope")
        return cls(type=doc["type"], source=doc["source"], data=doc.get("data") or {},
                   id=doc["id"], version=doc.get("version", "v1"),
                   time=doc.get("time", ""), correlation_id=doc.get("correlation_id"))


def payload(obj: Any) -> dict[str, Any]:
    """A contract instance as plain JSON-able data."""
    return dataclasses.asdict(obj)


# ---- auth contracts -------------------------------------------------------------------------

@dataclass(frozen=True)
class UserRegistered:
    user_id: str
    email: str
    display_name: str


@dataclass(frozen=True)
class UserUpdated:
    user_id: str
    email: str
    display_name: str
    avatar: str | None
    changes: list[str]


@dataclass(frozen=True)
class UserDeleted:
    user_id: str
    email: str


@dataclass(frozen=True)
class SessionRevoked:
    session_id: str
    user_id: str
    expires_at: int  # unix seconds; the revocation entry is useless after the token expires
    reason: str


@dataclass(frozen=True)
class ExportRequest:
    user_id: str
    email: str
