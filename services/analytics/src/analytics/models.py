"""Tables of the analytics service. Only the bus tables exist until its issue lands."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from bugnet_common.bus.tables import bus_tables


class Base(SQLModel, registry=registry()):
    """This service's tables, on a MetaData of their own (services may share a process in tests)."""


BUS = bus_tables(Base.metadata)
