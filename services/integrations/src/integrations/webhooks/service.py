"""Use cases on webhooks: CRUD, the `ping` test, and the deliveries log.

Invariants: the secret is stored encrypted and returned only by the request that set it
(creation, or a PATCH with a new `secret`); the URL passed the SSRF checks when it was saved
(targets.py) and is checked again at every delivery.
"""

from __future__ import annotations

import secrets as secrets_mod
import uuid
from typing import Annotated, Literal, NotRequired, cast

from pydantic import Field
from sqlmodel import Session, col, func, select
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Timestamp, Uuid
from bugnet_common.web import Page

from .. import crypto, targets
from ..delivery import send
from ..delivery.outcomes import apply_outcome
from ..delivery.prepare import prepare
from ..dispatch import PING, target_key_of, webhook_body
from ..models import Delivery, DeliveryAttempt, ProjectRef, Webhook
from ..settings import IntegrationsSettings
from ..views import iso
from .schemas import WebhookIn, WebhookPatch

DeliveryStatus = Literal["pending", "delivered", "failed"]
AttemptOutcome = Literal["delivered", "retry", "failed"]


class WebhookOut(TypedDict):
    id: Uuid
    url: str
    events: list[str]
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp
    secret: NotRequired[Annotated[str, Field(description=(
        "Only in the answer of the request that set it (creation, or a change of secret)."))]]


class DeliveryOut(TypedDict):
    id: Uuid
    webhook_id: Annotated[Uuid | None, Field(description="Null for a Discord delivery.")]
    event: str
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    duration_ms: int | None
    error: str | None
    created_at: Timestamp
    next_attempt_at: Timestamp | None
    completed_at: Timestamp | None


class DeliveryAttemptOut(TypedDict):
    number: int
    outcome: AttemptOutcome
    response_code: int | None
    duration_ms: int | None
    error: str | None
    started_at: Timestamp


class DeliveryDetailOut(DeliveryOut):
    attempts_log: list[DeliveryAttemptOut]
    request_body: Annotated[str, Field(
        description="The exact body sent (and signed) at every attempt.")]


def webhook_out(hook: Webhook, *, secret: str | None = None) -> WebhookOut:
    out: WebhookOut = {"id": hook.id, "url": hook.url, "events": list(hook.events),
                       "enabled": hook.enabled, "created_at": iso(hook.created_at),
                       "updated_at": iso(hook.updated_at)}
    if secret is not None:
        out["secret"] = secret  # shown this once
    return out


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return {"id": delivery.id, "webhook_id": delivery.webhook_id, "event": delivery.event,
            "status": cast(DeliveryStatus, delivery.status), "attempts": delivery.attempts,
            "response_code": delivery.response_code, "duration_ms": delivery.duration_ms,
            "error": delivery.error, "created_at": iso(delivery.created_at),
            "next_attempt_at": iso(delivery.next_attempt_at),
            "completed_at": iso(delivery.completed_at)}


def attempt_out(attempt: DeliveryAttempt) -> DeliveryAttemptOut:
    return {"number": attempt.number, "outcome": cast(AttemptOutcome, attempt.outcome),
            "response_code": attempt.response_code, "duration_ms": attempt.duration_ms,
            "error": attempt.error, "started_at": iso(attempt.started_at)}


def delivery_detail_out(session: Session, delivery: Delivery) -> DeliveryDetailOut:
    """A delivery with its attempts and the body it sends."""
    return {**delivery_out(delivery),
            "attempts_log": [attempt_out(a) for a in attempts_of(session, delivery)],
            "request_body": delivery.body}


def checked_url(url: str, settings: IntegrationsSettings) -> str:
    """`url` when it may be a target; 400 naming `url` otherwise."""
    try:
        return targets.check_url(url, settings).url
    except targets.TargetRefused as exc:
        raise errors.ValidationFailed(f"Invalid 'url': {exc}", details={"url": str(exc)}) from None


def find_webhook(session: Session, project: ProjectRef, webhook_id: str) -> Webhook:
    hook = None
    try:
        uuid.UUID(webhook_id)
        hook = session.get(Webhook, webhook_id.lower())
    except ValueError:
        pass
    if hook is None or hook.project_id != project.id:
        raise errors.NotFound("Webhook not found")
    return hook


def list_webhooks(*, session: Session, project: ProjectRef,
                  page: Page) -> tuple[list[Webhook], int]:
    """One page of the project's webhooks, newest first; and the total."""
    where = Webhook.project_id == project.id
    total = session.exec(select(func.count()).select_from(Webhook).where(where)).one()
    rows = session.exec(select(Webhook).where(where)
                        .order_by(col(Webhook.created_at).desc(), col(Webhook.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def create_webhook(*, session: Session, project: ProjectRef, data: WebhookIn, actor_id: str,
                   settings: IntegrationsSettings) -> tuple[Webhook, str]:
    """A new webhook and its secret (generated when not given)."""
    url = checked_url(data.url, settings)
    secret = data.secret or "whsec_" + secrets_mod.token_urlsafe(32)
    hook = Webhook(id=str(uuid.uuid4()), project_id=project.id, url=url, events=data.events,
                   secret_encrypted=crypto.encrypt(settings.secret(), secret),
                   enabled=data.enabled, created_by=actor_id)
    session.add(hook)
    session.commit()
    return hook, secret


def update_webhook(*, session: Session, hook: Webhook, data: WebhookPatch,
                   settings: IntegrationsSettings) -> Webhook:
    """Change a webhook's URL, events, secret or enabled flag."""
    if data.url is not None:
        hook.url = checked_url(data.url, settings)
    if data.events is not None:
        hook.events = data.events
    if data.secret is not None:
        hook.secret_encrypted = crypto.encrypt(settings.secret(), data.secret)
    if data.enabled is not None:
        hook.enabled = data.enabled
    hook.updated_at = utcnow()
    session.add(hook)
    session.commit()
    return hook


def delete_webhook(*, session: Session, hook: Webhook) -> None:
    """Delete a webhook and its deliveries."""
    session.delete(hook)
    session.commit()


def ping(*, session: Session, project: ProjectRef, hook: Webhook,
         settings: IntegrationsSettings) -> Delivery:
    """Send a `ping` to the webhook now (one attempt) and record it as a delivery."""
    now = utcnow()
    delivery_id = str(uuid.uuid4())
    data = {"webhook_id": hook.id, "events": list(hook.events),
            "zen": "Bugs are features you have not met yet."}
    delivery = Delivery(id=delivery_id, project_id=project.id, webhook_id=hook.id,
                        channel="webhook", event=PING, target_key=target_key_of(hook.url),
                        body=webhook_body(event=PING, project_slug=project.slug,
                                          delivery_id=delivery_id, data=data, at=now),
                        created_at=now, status="pending", next_attempt_at=None)
    # Sending happens outside any transaction; the delivery is written once, with its outcome.
    prepared = prepare(session, delivery_id=delivery.id, channel="webhook", webhook_id=hook.id,
                       project_id=project.id, event=PING, body=delivery.body, settings=settings)
    session.rollback()
    outcome = send.send_sync(prepared, settings)
    apply_outcome(session, delivery, outcome, started_at=now, settings=settings, retry=False)
    session.commit()
    return delivery


def list_deliveries(*, session: Session, hook: Webhook,
                    page: Page) -> tuple[list[Delivery], int]:
    """One page of a webhook's deliveries, newest first; and the total."""
    where = Delivery.webhook_id == hook.id
    total = session.exec(select(func.count()).select_from(Delivery).where(where)).one()
    rows = session.exec(select(Delivery).where(where)
                        .order_by(col(Delivery.created_at).desc(), col(Delivery.id).desc())
                        .offset(page.offset).limit(page.limit)).all()
    return list(rows), int(total)


def find_delivery(session: Session, hook: Webhook, delivery_id: str) -> Delivery:
    delivery = None
    try:
        uuid.UUID(delivery_id)
        delivery = session.get(Delivery, delivery_id.lower())
    except ValueError:
        pass
    if delivery is None or delivery.webhook_id != hook.id:
        raise errors.NotFound("Delivery not found")
    return delivery


def attempts_of(session: Session, delivery: Delivery) -> list[DeliveryAttempt]:
    return list(session.exec(select(DeliveryAttempt)
                             .where(DeliveryAttempt.delivery_id == delivery.id)
                             .order_by(col(DeliveryAttempt.number))).all())
