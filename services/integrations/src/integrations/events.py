"""The integrations service's outgoing events, staged in the caller's transaction (outbox)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from bugnet_common.bus.events import Event, payload
from bugnet_common.bus.outbox import add_event

from .models import BUS


def emit(session: Session, subject: str, data: Any) -> None:
    """Stage `data` (a contract from bugnet_common.bus.events) as an event on `subject`."""
    add_event(session, BUS, Event(type=subject, source="integrations", data=payload(data)))
