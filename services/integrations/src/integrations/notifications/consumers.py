"""The worker's consumers and mailer for notifications (registered in integrations/worker.py)."""

from __future__ import annotations

import functools

from bugnet_common.bus.inbox import Consumer
from bugnet_common.bus.worker import Task
from bugnet_common.db import Database

from ..settings import IntegrationsSettings
from . import handlers
from .mail import Mailer

BUGS_DURABLE = "integrations-notifications"
USERS_DURABLE = "integrations-notifications-users"


def consumers(settings: IntegrationsSettings) -> list[Consumer]:
    handler = functools.partial(handlers.dispatch, settings=settings)
    return [
        Consumer(durable=BUGS_DURABLE, stream="BUGS", subjects=handlers.BUG_SUBJECTS,
                 handler=handler),
        Consumer(durable=USERS_DURABLE, stream="AUTH", subjects=handlers.USER_SUBJECTS,
                 handler=handler),
    ]


def tasks(settings: IntegrationsSettings, db: Database) -> list[Task]:
    """The mailer, when SMTP is configured (without it no email is ever queued)."""
    return [Mailer(settings=settings, db=db).task] if settings.smtp_host else []
