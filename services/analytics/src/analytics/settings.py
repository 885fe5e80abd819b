"""Settings of the analytics service (environment prefix ANALYTICS_)."""

from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class AnalyticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    service_name: str = "analytics"
