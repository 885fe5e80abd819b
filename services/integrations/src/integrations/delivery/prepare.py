"""Turn a queued delivery into a request: its target, headers and exact body.

A delivery whose target is gone (webhook deleted or disabled, Discord integration removed),
whose stored credential cannot be decrypted or whose URL the settings no longer allow is
undeliverable: it fails at once, without an attempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from .. import crypto, targets
from ..discord import urls as discord_urls
from ..models import DiscordIntegration, Webhook
from ..settings import IntegrationsSettings
from .send import Prepared, discord_headers, webhook_headers


class Undeliverable(Exception):
    """The delivery cannot be attempted; the message is recorded as its error."""


@dataclass(frozen=True)
class TargetRow:
    """The stored target of a delivery: a webhook's URL and secret, or a Discord channel URL
    (`secret_encrypted` None). None for a target that no longer exists."""

    url_or_encrypted: str
    secret_encrypted: str | None
    enabled: bool


def prepare_from(*, delivery_id: str, channel: str, event: str, body: str,
                 target: TargetRow | None, settings: IntegrationsSettings) -> Prepared:
    """The request of a delivery, from its stored target (no database access)."""
    raw = body.encode()
    if channel == "webhook":
        if target is None:
            raise Undeliverable("webhook deleted")
        if not target.enabled:
            raise Undeliverable("webhook disabled")
        try:
            secret = crypto.decrypt(settings.secret(), target.secret_encrypted or "")
            parsed = targets.parse(target.url_or_encrypted, settings)
        except ValueError as exc:
            raise Undeliverable(str(exc)) from None
        return Prepared(target=parsed, body=raw, headers=webhook_headers(
            delivery_id=delivery_id, event=event, secret=secret, body=raw))
    if channel == "discord":
        if target is None:
            raise Undeliverable("Discord integration removed")
        if not target.enabled:
            raise Undeliverable("Discord integration disabled")
        try:
            url = crypto.decrypt(settings.secret(), target.url_or_encrypted)
            trusted = discord_urls.is_trusted(url, settings)
            parsed = targets.parse(url, settings, trusted=trusted)
        except ValueError as exc:
            raise Undeliverable(str(exc)) from None
        return Prepared(target=parsed, body=raw, headers=discord_headers(), trusted=trusted)
    raise Undeliverable(f"unknown channel {channel!r}")


def prepare(session: Session, *, delivery_id: str, channel: str, webhook_id: str | None,
            project_id: str, event: str, body: str, settings: IntegrationsSettings) -> Prepared:
    """The request of a delivery, reading its target from the database."""
    target = None
    if channel == "webhook":
        hook = session.get(Webhook, webhook_id) if webhook_id else None
        if hook is not None:
            target = TargetRow(hook.url, hook.secret_encrypted, hook.enabled)
    elif channel == "discord":
        integration = session.get(DiscordIntegration, project_id)
        if integration is not None:
            target = TargetRow(integration.webhook_url_encrypted, None, integration.enabled)
    return prepare_from(delivery_id=delivery_id, channel=channel, event=event, body=body,
                        target=target, settings=settings)
