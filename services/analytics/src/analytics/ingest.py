"""The ingestors of this service's SDK endpoints, one per app and process: session starts and
ends, and perf snapshots, each with its own writer thread(s) (see `batching.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from flask import current_app
from flask.sansio.app import App

from .batching import Ingestor, Pending
from .keys import KeyCache
from .perf.service import write_snapshots
from .sessions.ingest import write_sessions
from .settings import AnalyticsSettings

SESSIONS = "analytics.sessions_ingestor"
PERF = "analytics.perf_ingestor"
KEYS = "analytics.key_cache"


def write_session_batch(pg: psycopg.Connection[Any], batch: Sequence[Pending]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    write_sessions(pg, batch, range(len(batch)), out)
    return out


def write_perf_batch(pg: psycopg.Connection[Any], batch: Sequence[Pending]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    write_snapshots(pg, batch, out)
    return out


def init_app(app: App) -> None:
    """Give `app` its ingestors and API key cache (idempotent)."""
    settings: AnalyticsSettings = app.extensions["bugnet.settings"]
    app.extensions.setdefault(SESSIONS, Ingestor(
        write_session_batch, writers=settings.ingest_writers,
        max_batch=settings.ingest_max_batch, linger=settings.ingest_linger_ms / 1000,
        name="analytics-sessions"))
    app.extensions.setdefault(PERF, Ingestor(
        write_perf_batch, writers=1, max_batch=settings.ingest_max_batch,
        linger=settings.ingest_linger_ms / 1000, name="analytics-perf"))
    app.extensions.setdefault(KEYS, KeyCache(settings.api_key_cache_seconds))


def sessions_ingestor() -> Ingestor:
    return current_app.extensions[SESSIONS]  # type: ignore[no-any-return]


def perf_ingestor() -> Ingestor:
    return current_app.extensions[PERF]  # type: ignore[no-any-return]


def key_cache() -> KeyCache:
    return current_app.extensions[KEYS]  # type: ignore[no-any-return]
