"""Settings base: one pydantic-settings class per service, each with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """What every service needs; subclasses set `env_prefix` (AUTH_, BUGS_, ...)."""

    model_config = SettingsConfigDict(extra="ignore", env_nested_delimiter="__")

    service_name: str = "service"
    env: Literal["dev", "test", "prod"] = "dev"
    database_url: SecretStr = SecretStr("postgresql+psycopg://postgres@127.0.0.1:55432/postgres")
    db_pool_size: int = Field(default=5, ge=1, le=100)
    nats_url: str = "nats://127.0.0.1:4222"
    jwks_url: str = "http://127.0.0.1:8101/api/auth/jwks.json"
    jwt_issuer: str = "bugnet"
    jwt_audience: str = "bugnet"
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    data_dir: Path = Path(".bugnet")
    log_level: str = "INFO"
    # The gateway overwrites x-bugnet-client-ip with the real client address; a service reached
    # without the gateway in front (tests, debugging) must not trust a client-sent copy.
    trust_gateway_headers: bool = True
    revocation_bucket: str = "revoked_sessions"
    # Start the NATS-connected background thread in api processes (revocation watch, RPC).
    bus_in_api: bool = True
    max_body_bytes: int = Field(default=1 * 1024 * 1024, ge=1024)
    # One INFO line per answered request (method, route template, status, duration) with its
    # request id. Off by default: the gateway's access log is the record of requests; slow
    # (>= 1 s) and failed (5xx) requests are logged whatever this says.
    log_requests: bool = False
    # Where a worker process serves /metrics and /healthz. One name for every service (no
    # prefix): each worker runs in its own process, container or pod. Port 0 picks a free one.
    worker_metrics_host: str = Field(default="0.0.0.0", validation_alias=AliasChoices(
        "worker_metrics_host", "WORKER_METRICS_HOST"))
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535, validation_alias=AliasChoices(
        "worker_metrics_port", "WORKER_METRICS_PORT"))

    @property
    def worker_metrics_address(self) -> tuple[str, int]:
        return self.worker_metrics_host, self.worker_metrics_port
