"""`python -m analytics.migrate`: bring the analytics database to the newest schema."""

from bugnet_common.db import migrate_service, migrations_dir

from .settings import AnalyticsSettings

MIGRATIONS = migrations_dir(__file__)

if __name__ == "__main__":
    migrate_service(AnalyticsSettings(), __file__)
