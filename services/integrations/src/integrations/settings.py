"""Settings of the integrations service (environment prefix INTEGRATIONS_).

External services (Discord, GitHub, GitLab, Steam, SMTP) are reached only at the base URLs and
hosts given here, so tests point them at local servers. Outgoing targets that users choose
(webhook and Discord URLs) must be public https addresses unless `allow_http`,
`allow_private_targets` or `allowed_targets` say otherwise.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings

# Only for env dev/test: a deployment must bring its own key (see `_secret_key_outside_dev`).
DEV_SECRET_KEY = "bugnet-integrations-dev-secret-key-not-for-production"


class IntegrationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTEGRATIONS_", extra="ignore")

    service_name: str = "integrations"

    # Encrypts stored credentials (git tokens, webhook secrets, Discord webhook URLs): a Fernet
    # key is derived from it. Changing it makes the stored ones unreadable.
    secret_key: SecretStr | None = None

    # Links in outgoing payloads (`url` of a bug) are made absolute with this.
    public_base_url: str = "http://127.0.0.1:8080"

    # --- outgoing targets (webhooks, Discord) ------------------------------------------------
    # http:// targets; None means "only outside prod" (spec §7: https in production).
    allow_http: bool | None = None
    # Every private, loopback and link-local address permitted (never in production).
    allow_private_targets: bool = False
    # Networks (CIDR, e.g. "127.0.0.0/8") and host names ("hooks.internal", "*.corp.example")
    # permitted although they resolve to addresses that are otherwise refused.
    allowed_targets: list[str] = Field(default_factory=list)

    # --- the delivery engine (worker) -------------------------------------------------------
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Retry n waits about base * 2**(n-1) seconds (+ up to 25 % jitter), at most the cap;
    # retries go on until a delivery is `delivery_retry_window_seconds` old.
    delivery_backoff_base_seconds: float = Field(default=15.0, gt=0)
    delivery_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_retry_window_seconds: float = Field(default=26 * 3600.0, gt=0)
    # How long a claimed delivery is reserved for the worker that claimed it; a crashed
    # worker's claims are taken over after it.
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    delivery_poll_seconds: float = Field(default=0.5, gt=0)
    # In-flight deliveries per target host (one slow endpoint cannot hold more) and in all.
    delivery_per_target_concurrency: int = Field(default=4, ge=1, le=100)
    delivery_concurrency: int = Field(default=64, ge=1, le=1000)
    # Delivered and failed deliveries (and their attempt logs) are kept this long.
    delivery_retention_days: float = Field(default=30.0, gt=0)

    # --- external services ------------------------------------------------------------------
    # Besides discord.com and discordapp.com, webhook URLs under this base are accepted.
    discord_base_url: str | None = None
    github_api_url: str = "https://api.github.com"
    gitlab_url: str = "https://gitlab.com"
    steam_store_url: str = "https://store.steampowered.com"
    steam_api_url: str = "https://api.steampowered.com"

    # --- git issues and Steam reviews (git/, steam/) -----------------------------------------
    git_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    steam_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # A Steam sync runs inside the request (under the gateway's 30 s route timeout): at most
    # this many pages of 100 reviews and this long; the next sync continues where it stopped.
    steam_sync_max_pages: int = Field(default=20, ge=1, le=1000)
    steam_sync_deadline_seconds: float = Field(default=20.0, gt=0, le=600)

    # --- email (notifications) ----------------------------------------------------------------
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Bugnet <no-reply@bugnet.local>"

    # --- notifications mailer (HI2: notifications/mail.py) --------------------------------------
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Queued emails are looked for this often; a failed one is retried after about
    # base * 2**(attempt-1) seconds (at most an hour), `mail_max_attempts` times in all.
    mail_poll_seconds: float = Field(default=1.0, gt=0)
    mail_backoff_base_seconds: float = Field(default=30.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1, le=100)

    @model_validator(mode="after")
    def _secret_key_outside_dev(self) -> IntegrationsSettings:
        if self.secret_key is None:
            if self.env == "prod":
                raise ValueError("INTEGRATIONS_SECRET_KEY must be set in production")
            self.secret_key = SecretStr(DEV_SECRET_KEY)
        return self

    @property
    def http_allowed(self) -> bool:
        return self.allow_http if self.allow_http is not None else self.env != "prod"

    def secret(self) -> str:
        assert self.secret_key is not None
        return self.secret_key.get_secret_value()
