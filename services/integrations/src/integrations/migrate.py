"""`python -m integrations.migrate`: bring the integrations database to the newest schema."""

from bugnet_common.db import migrate_service, migrations_dir

from .settings import IntegrationsSettings

MIGRATIONS = migrations_dir(__file__)

if __name__ == "__main__":
    migrate_service(IntegrationsSettings(), __file__)
