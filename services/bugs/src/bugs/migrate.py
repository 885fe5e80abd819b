"""`python -m bugs.migrate`: bring the bugs database to the newest schema."""

from pathlib import Path

from bugnet_common.db import migrate

from .settings import BugsSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def main() -> None:
    settings = BugsSettings()
    migrate(script_location=MIGRATIONS, url=settings.database_url.get_secret_value())


if __name__ == "__main__":
    main()
