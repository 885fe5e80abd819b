"""Tables of the analytics service. Only the bus tables exist until its issue lands."""

from bugnet_common.bus.tables import bus_tables
from bugnet_common.db import new_base

Base = new_base()
BUS = bus_tables(Base.metadata)
