"""`python -m bench` (what `make bench` runs): every benchmark, with the same arguments.

Without this file `make bench` would run each module in bench/ on its own, the load driver
and the baseline Envoy helper included.
"""

from __future__ import annotations

import sys

from bench import (
    alerts_notify,
    analytics_ingest,
    analytics_queries,
    auth_me,
    driver_pool,
    gateway_usage,
    metrics_overhead,
    sdk_submit,
    webhook_fanout,
)

BENCHMARKS = (auth_me.main, sdk_submit.main, gateway_usage.main, webhook_fanout.main,
              analytics_queries.main, analytics_ingest.main, alerts_notify.main,
              metrics_overhead.main, driver_pool.main)


def main() -> int:
    status = 0
    for run in BENCHMARKS:
        status = run(sys.argv[1:]) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
