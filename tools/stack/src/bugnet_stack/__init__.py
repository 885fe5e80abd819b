"""Runs the whole Bugnet stack on one machine from PyPI wheels: PostgreSQL, NATS, every
service's api and worker, and Envoy, under one supervisord per data directory.

    with Stack(data_dir=tmp, ports=Ports.free(), limits=RateLimits(public=1000)) as stack:
        httpx.get(stack.urls.gateway + "/api/health")
"""

from bugnet_stack.config import COMPONENTS, SERVICES, Ports
from bugnet_stack.errors import PortInUse, StackError, StartupFailed
from bugnet_stack.net import free_port
from bugnet_stack.stack import ProcessStatus, Stack, StackUrls

__all__ = [
    "COMPONENTS",
    "SERVICES",
    "PortInUse",
    "Ports",
    "ProcessStatus",
    "Stack",
    "StackError",
    "StackUrls",
    "StartupFailed",
    "free_port",
]
