"""`python -m integrations.worker`: the outbox relay, the read models (projects, members,
users), bug/comment/regression events turned into deliveries, and the delivery engine.

Areas add their consumers to `consumers()` and their periodic jobs to `tasks()`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from bugnet_common.bus import subjects
from bugnet_common.bus.events import ExportRequest
from bugnet_common.bus.inbox import Consumer
from bugnet_common.bus.worker import Task, Worker, run
from bugnet_common.db import Database

from . import handlers
from .alerts.consumers import consumers as alert_consumers
from .git import handlers as git_handlers
from .models import BUS
from .notifications import consumers as notifications
from .settings import IntegrationsSettings

READMODELS_DURABLE = "integrations-readmodels"
READMODELS_USERS_DURABLE = "integrations-readmodels-users"
EVENTS_DURABLE = "integrations-events"
EVENTS_ANALYTICS_DURABLE = "integrations-events-analytics"


def consumers(settings: IntegrationsSettings) -> list[Consumer]:
    """Every durable consumer of this worker (one per stream and purpose)."""
    on_event = functools.partial(handlers.event_dispatch, settings=settings)
    return [
        Consumer(durable=READMODELS_DURABLE, stream="BUGS",
                 subjects=[subjects.PROJECT_CREATED, subjects.PROJECT_UPDATED,
                           subjects.PROJECT_DELETED, subjects.MEMBER_ADDED,
                           subjects.MEMBER_UPDATED, subjects.MEMBER_REMOVED],
                 handler=handlers.readmodel_dispatch),
        Consumer(durable=READMODELS_USERS_DURABLE, stream="AUTH",
                 subjects=[subjects.USER_REGISTERED, subjects.USER_UPDATED,
                           subjects.USER_DELETED],
                 handler=handlers.readmodel_dispatch),
        Consumer(durable=EVENTS_DURABLE, stream="BUGS",
                 subjects=[subjects.BUG_CREATED, subjects.BUG_UPDATED, subjects.BUG_RESOLVED,
                           subjects.COMMENT_ADDED],
                 handler=on_event),
        Consumer(durable=EVENTS_ANALYTICS_DURABLE, stream="ANALYTICS",
                 subjects=[subjects.REGRESSION_DETECTED], handler=on_event),
        *alert_consumers(settings),
        *notifications.consumers(settings),
        Consumer(durable="integrations-git-bugs", stream="BUGS", subjects=git_handlers.SUBJECTS,
                 handler=git_handlers.dispatch),
    ]


def tasks(settings: IntegrationsSettings, db: Database) -> list[Task]:
    """Long-running jobs of the worker besides consumers (the delivery engine, schedules)."""
    from .delivery.engine import DeliveryEngine

    return [DeliveryEngine(settings=settings, db=db).task,
            *notifications.tasks(settings, db)]


def export_part(_request: ExportRequest) -> dict[str, Any]:
    """Personal data held here is a copy of auth's (email, name); nothing to add."""
    return {}


def build_worker(settings: IntegrationsSettings, db: Database, *,
                 deliveries: bool = True) -> Worker:
    return Worker(service="integrations", nats_url=settings.nats_url, db=db, tables=BUS,
                  consumers=consumers(settings), export=export_part,
                  tasks=tasks(settings, db) if deliveries else ())


def main() -> None:
    settings = IntegrationsSettings()
    # httpx logs every request URL at INFO; Discord webhook URLs carry their token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    db = Database(settings.database_url.get_secret_value(), pool_size=4)
    run(build_worker(settings, db), settings)


if __name__ == "__main__":
    main()
