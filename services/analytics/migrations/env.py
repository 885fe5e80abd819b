from analytics.models import Base
from bugnet_common.db import run_migrations_online

run_migrations_online(Base.metadata)
