"""Settings of the bugs service (environment prefix BUGS_)."""

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class BugsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BUGS_", extra="ignore")

    service_name: str = "bugs"
    # Attachments (screenshots, replays): "local" keeps them under data_dir/attachments;
    # "s3" uses any S3-compatible store.
    attachment_storage: str = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: SecretStr | None = None
    max_screenshot_bytes: int = 15 * 1024 * 1024
    max_replay_bytes: int = 15 * 1024 * 1024
    # Where invitation emails go; no host means invitations are not emailed.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Bugnet <no-reply@bugnet.local>"
    public_base_url: str = "http://127.0.0.1:8080"
    invitation_ttl_days: int = 7
    # Requests carry 20 MB screenshots on the SDK routes; the gateway caps bodies first.
    max_body_bytes: int = 20 * 1024 * 1024
    # Batch writers per api worker for SDK submits (one beat two on 2 cores: bigger batches).
    ingest_writers: int = Field(default=1, ge=1, le=16)
