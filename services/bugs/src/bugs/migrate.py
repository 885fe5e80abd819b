"""`python -m bugs.migrate`: bring the bugs database to the newest schema."""

from bugnet_common.db import migrate_service, migrations_dir

from .settings import BugsSettings

MIGRATIONS = migrations_dir(__file__)

if __name__ == "__main__":
    migrate_service(BugsSettings(), __file__)
