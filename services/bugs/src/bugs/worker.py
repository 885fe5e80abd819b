"""`python -m bugs.worker`: outbox relay and this service's part of the account export."""

from typing import Any

from bugnet_common.bus.events import ExportRequest
from bugnet_common.bus.worker import Worker, run
from bugnet_common.db import Database

from .models import BUS
from .settings import BugsSettings


def export_part(_request: ExportRequest) -> dict[str, Any]:
    """This service holds no personal data yet."""
    return {}


def main() -> None:
    settings = BugsSettings()
    db = Database(settings.database_url.get_secret_value(), pool_size=2)
    run(Worker(service="bugs", nats_url=settings.nats_url, db=db, tables=BUS, export=export_part))


if __name__ == "__main__":
    main()
