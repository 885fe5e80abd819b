"""`python -m auth.migrate`: bring the auth database to the newest schema."""

from bugnet_common.db import migrate_service, migrations_dir

from .settings import AuthSettings

MIGRATIONS = migrations_dir(__file__)

if __name__ == "__main__":
    migrate_service(AuthSettings(), __file__)
