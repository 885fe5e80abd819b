"""Settings of the auth service (environment prefix AUTH_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    service_name: str = "auth"
    token_ttl_seconds: int = 7 * 24 * 3600
    # Per-account sign-in throttle (auth.throttle): past this many failed logins for one
    # email within the window, further attempts for it get 429 until the window ends.
    login_failures_max: int = Field(default=10, ge=1)
    login_failures_window_seconds: int = Field(default=15 * 60, ge=1)
    # How often the worker deletes throttle rows whose window is over.
    login_failures_prune_seconds: float = Field(default=300.0, gt=0)
    # Other services' base URLs, probed by GET /api/health (an operational probe, not data).
    service_urls: dict[str, str] = Field(default_factory=dict)
    health_timeout_seconds: float = 1.5
    # Services whose part of the account export must answer before an account is deleted.
    export_services: list[str] = Field(
        default_factory=lambda: ["bugs", "analytics", "integrations"])
    export_timeout_seconds: float = 3.0
    # Served as-is by GET /api/config/public; only publishable values belong here.
    public_config: dict[str, object] = Field(
        default_factory=lambda: dict.fromkeys(("firebase", "stripe_publishable_key")))
