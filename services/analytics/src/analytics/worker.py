"""`python -m analytics.worker`: the outbox relay, the read models of the bugs service
(consumer `analytics-readmodels`), scheduled tasks, and this service's part of the account
export.

Other areas add their consumers to CONSUMERS and their schedules to TASKS, one line each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bugnet_common.bus.events import ExportRequest
from bugnet_common.bus.inbox import Consumer
from bugnet_common.bus.worker import Task, Worker, run
from bugnet_common.db import Database

from .handlers import SUBJECTS, dispatch
from .models import BUS
from .regressions.handlers import regressions_consumer
from .regressions.schedule import detection_schedule
from .settings import AnalyticsSettings
from .usage.consumer import usage_consumer

READMODELS_DURABLE = "analytics-readmodels"


def readmodels_consumer(durable: str = READMODELS_DURABLE) -> Consumer:
    """The bugs service's projects, keys, members and bugs; `durable` lets a test replay the
    stream from scratch into a fresh database under a new name."""
    return Consumer(durable=durable, stream="BUGS", subjects=list(SUBJECTS), handler=dispatch)


# (settings, db) -> consumer, for every consumer of this service.
CONSUMERS: tuple[Callable[[AnalyticsSettings, Database], Consumer], ...] = (
    lambda _settings, _db: readmodels_consumer(),
    lambda _settings, _db: usage_consumer(),
    lambda _settings, _db: regressions_consumer(),
)
# (settings, db) -> task, for every scheduled job of this service.
TASKS: tuple[Callable[[AnalyticsSettings, Database], Task], ...] = (
    detection_schedule,
)


def export_part(_request: ExportRequest) -> dict[str, Any]:
    """This service holds no personal data keyed by user (sessions and ratings are keyed by
    game clients)."""
    return {}


def build_worker(settings: AnalyticsSettings, db: Database) -> Worker:
    return Worker(service="analytics", nats_url=settings.nats_url, db=db, tables=BUS,
                  consumers=[make(settings, db) for make in CONSUMERS],
                  tasks=[make(settings, db) for make in TASKS], export=export_part)


def main() -> None:
    settings = AnalyticsSettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=2)
    run(build_worker(settings, db), settings)


if __name__ == "__main__":
    main()
