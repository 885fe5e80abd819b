"""Settings of the analytics service (environment prefix ANALYTICS_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    service_name: str = "analytics"
    # How long an api process may answer from its memory which project an API key belongs
    # to. A rotated key must stop working within 2 s of the rotation: the read model learns
    # it within about a second, so this stays at or under one.
    api_key_cache_seconds: float = Field(default=1.0, ge=0.0, le=1.0)
    # Batch writers per api process for session starts/ends and perf snapshots.
    ingest_writers: int = Field(default=1, ge=1, le=16)
    # Most requests written in one ingestion transaction.
    ingest_max_batch: int = Field(default=256, ge=1, le=5000)
    # Under a steady stream of requests, a writer waits this long for more before writing a
    # batch (batching.py): bigger batches cost PostgreSQL far less per request. Never when idle.
    ingest_linger_ms: float = Field(default=2.0, ge=0.0, le=50.0)
    # Answer session starts/ends and perf snapshots in the WSGI fast path (fastpath.py)
    # instead of through Flask's request machinery (same handlers, same answers).
    sdk_fast_path: bool = True
