"""Applying an attempt's outcome to its delivery: the attempts log, retry schedule, final state.

Retry n (n = attempts so far) waits base * 2**(n-1) seconds, capped at the maximum, plus up to
25 % jitter (retries of many deliveries failing together spread out; each delay still at least
doubles while below the cap). A receiver's Retry-After wins when it asks for longer. A delivery
whose next attempt would fall outside the retry window (24 h+) fails for good.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlmodel import Session

from bugnet_common.bus import events as ev
from bugnet_common.bus import subjects
from bugnet_common.bus.events import utcnow

from ..events import emit
from ..models import Delivery, DeliveryAttempt
from ..settings import IntegrationsSettings
from .send import Outcome


def backoff_seconds(attempts: int, settings: IntegrationsSettings) -> float:
    """The wait before the next attempt after `attempts` failed ones."""
    base = settings.delivery_backoff_base_seconds * (2 ** max(attempts - 1, 0))
    return min(base, settings.delivery_backoff_max_seconds) * (1 + random.uniform(0, 0.25))


def apply_outcome(session: Session, delivery: Delivery, outcome: Outcome, *,
                  started_at: datetime, settings: IntegrationsSettings,
                  retry: bool = True) -> None:
    """Log the attempt and move `delivery` on: delivered, failed (final), or pending again with
    a later `next_attempt_at`. Emits webhook_delivery_failed on a webhook's final failure."""
    now = utcnow()
    delivery.attempts += 1
    delivery.response_code = outcome.response_code
    delivery.duration_ms = outcome.duration_ms
    delivery.error = outcome.error
    delivery.last_attempt_at = started_at
    delivery.lease_until = None
    if outcome.delivered:
        state = "delivered"
    elif outcome.final or not retry:
        state = "failed"
    else:
        delay = backoff_seconds(delivery.attempts, settings)
        if outcome.retry_after is not None:
            delay = max(outcome.retry_after, 0.0)
        due = now + timedelta(seconds=delay)
        window_end = delivery.created_at + timedelta(seconds=settings.delivery_retry_window_seconds)
        if due > window_end:
            state = "failed"
            delivery.error = f"{outcome.error}; retries exhausted"
        else:
            state = "retry"
            delivery.next_attempt_at = due
    if state == "retry":
        delivery.status = "pending"
    else:
        delivery.status = state
        delivery.next_attempt_at = None
        delivery.completed_at = now
    session.add(delivery)
    session.add(DeliveryAttempt(
        id=str(uuid.uuid4()), delivery_id=delivery.id, number=delivery.attempts, outcome=state,
        response_code=outcome.response_code, duration_ms=outcome.duration_ms,
        error=outcome.error, started_at=started_at))
    if state == "failed":
        failed(session, delivery)


def fail_without_attempt(session: Session, delivery: Delivery, error: str) -> None:
    """An undeliverable delivery: failed at once, no attempt logged."""
    delivery.status = "failed"
    delivery.error = error
    delivery.next_attempt_at = None
    delivery.lease_until = None
    delivery.completed_at = utcnow()
    session.add(delivery)
    failed(session, delivery)


def failed(session: Session, delivery: Delivery) -> None:
    if delivery.channel == "webhook" and delivery.webhook_id is not None \
            and delivery.event != "ping":
        emit(session, subjects.WEBHOOK_DELIVERY_FAILED, ev.WebhookDeliveryFailed(
            delivery_id=delivery.id, webhook_id=delivery.webhook_id,
            project_id=delivery.project_id, event=delivery.event, attempts=delivery.attempts,
            response_code=delivery.response_code, error=delivery.error))
