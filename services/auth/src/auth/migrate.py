"""`python -m auth.migrate`: bring the auth database to the newest schema."""

from pathlib import Path

from bugnet_common.db import migrate

from .settings import AuthSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def main() -> None:
    settings = AuthSettings()
    migrate(script_location=MIGRATIONS, url=settings.database_url.get_secret_value())


if __name__ == "__main__":
    main()
