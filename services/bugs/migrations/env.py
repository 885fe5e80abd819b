from bugnet_common.db import run_migrations_online
from bugs.models import Base

run_migrations_online(Base.metadata)
