"""`python -m integrations.migrate`: bring the integrations database to the newest schema."""

from pathlib import Path

from bugnet_common.db import migrate

from .settings import IntegrationsSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def main() -> None:
    settings = IntegrationsSettings()
    migrate(script_location=MIGRATIONS, url=settings.database_url.get_secret_value())


if __name__ == "__main__":
    main()
