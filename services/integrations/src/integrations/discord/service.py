"""Use cases of the Discord integration: one channel webhook per project, and its test.

The webhook URL (it holds the channel's token) is stored encrypted and shown masked.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import sqlalchemy as sa
from pydantic import Field
from sqlmodel import Session, col
from typing_extensions import TypedDict

from bugnet_common import errors
from bugnet_common.bus.events import utcnow
from bugnet_common.openapi import Timestamp

from .. import crypto
from ..delivery import send
from ..delivery.outcomes import apply_outcome
from ..delivery.prepare import prepare
from ..dispatch import PING, discord_body, discord_target_key
from ..models import Delivery, DiscordIntegration, ProjectRef
from ..settings import IntegrationsSettings
from ..views import iso
from . import urls
from .schemas import DiscordIn, DiscordPatch


class DiscordOut(TypedDict):
    webhook_url: Annotated[str, Field(
        description="Masked: the URL holds the channel's token.")]
    events: list[str]
    enabled: bool
    created_at: Timestamp
    updated_at: Timestamp


def discord_out(integration: DiscordIntegration) -> DiscordOut:
    return {"webhook_url": integration.webhook_url_hint, "events": list(integration.events),
            "enabled": integration.enabled, "created_at": iso(integration.created_at),
            "updated_at": iso(integration.updated_at)}


def checked_url(url: str, settings: IntegrationsSettings) -> str:
    """`url` when it is a Discord webhook URL; 400 naming `webhook_url` otherwise."""
    try:
        return urls.validate(url, settings)
    except urls.NotDiscord as exc:
        raise errors.ValidationFailed(f"Invalid 'webhook_url': {exc}",
                                      details={"webhook_url": str(exc)}) from None


def get_integration(session: Session, project: ProjectRef) -> DiscordIntegration:
    integration = session.get(DiscordIntegration, project.id)
    if integration is None:
        raise errors.NotFound("Discord is not configured for this project")
    return integration


def configure(*, session: Session, project: ProjectRef, data: DiscordIn,
              settings: IntegrationsSettings) -> tuple[DiscordIntegration, bool]:
    """Set the project's Discord channel (replacing any); True when it is new."""
    url = checked_url(data.webhook_url, settings)
    integration = session.get(DiscordIntegration, project.id)
    created = integration is None
    if integration is None:
        integration = DiscordIntegration(project_id=project.id, webhook_url_encrypted="",
                                         webhook_url_hint="")
    integration.webhook_url_encrypted = crypto.encrypt(settings.secret(), url)
    integration.webhook_url_hint = urls.hint(url)
    integration.events = data.events
    integration.enabled = data.enabled
    integration.updated_at = utcnow()
    session.add(integration)
    session.commit()
    return integration, created


def update(*, session: Session, project: ProjectRef, data: DiscordPatch,
           settings: IntegrationsSettings) -> DiscordIntegration:
    """Change the channel URL, events or enabled flag."""
    integration = get_integration(session, project)
    if data.webhook_url is not None:
        url = checked_url(data.webhook_url, settings)
        integration.webhook_url_encrypted = crypto.encrypt(settings.secret(), url)
        integration.webhook_url_hint = urls.hint(url)
    if data.events is not None:
        integration.events = data.events
    if data.enabled is not None:
        integration.enabled = data.enabled
    integration.updated_at = utcnow()
    session.add(integration)
    session.commit()
    return integration


def remove(*, session: Session, project: ProjectRef) -> DiscordIntegration:
    """Remove the integration; its pending deliveries are dropped."""
    integration = get_integration(session, project)
    session.execute(sa.delete(Delivery).where(col(Delivery.project_id) == project.id,
                                              col(Delivery.channel) == "discord",
                                              col(Delivery.status) == "pending"))
    session.delete(integration)
    session.commit()
    return integration


def test_message(*, session: Session, project: ProjectRef,
                 settings: IntegrationsSettings) -> Delivery:
    """Post a test message to the channel now (one attempt) and record it as a delivery."""
    get_integration(session, project)
    now = utcnow()
    data = {"title": "Bugnet is connected",
            "description": f"This channel will receive events of {project.name or project.slug}."}
    delivery = Delivery(id=str(uuid.uuid4()), project_id=project.id, webhook_id=None,
                        channel="discord", event=PING, target_key=discord_target_key(project.id),
                        body=discord_body(event=PING, project=project, data=data, at=now),
                        created_at=now, status="pending", next_attempt_at=None)
    prepared = prepare(session, delivery_id=delivery.id, channel="discord", webhook_id=None,
                       project_id=project.id, event=PING, body=delivery.body, settings=settings)
    session.rollback()
    outcome = send.send_sync(prepared, settings)
    apply_outcome(session, delivery, outcome, started_at=now, settings=settings, retry=False)
    session.commit()
    return delivery
