"""The worker's consumers of alert signals (registered in integrations/worker.py)."""

from __future__ import annotations

import functools

from bugnet_common.bus.inbox import Consumer

from ..settings import IntegrationsSettings
from . import evaluate

BUGS_DURABLE = "integrations-alerts"
ANALYTICS_DURABLE = "integrations-alerts-analytics"


def consumers(settings: IntegrationsSettings) -> list[Consumer]:
    handler = functools.partial(evaluate.dispatch, settings=settings)
    return [
        Consumer(durable=BUGS_DURABLE, stream="BUGS", subjects=evaluate.ALERT_BUG_SUBJECTS,
                 handler=handler),
        Consumer(durable=ANALYTICS_DURABLE, stream="ANALYTICS",
                 subjects=evaluate.ALERT_ANALYTICS_SUBJECTS, handler=handler),
    ]
