import integrations.app  # noqa: F401  (imports every area, so all their tables are on Base)
from bugnet_common.db import run_migrations_online
from integrations.models import Base

run_migrations_online(Base.metadata)
