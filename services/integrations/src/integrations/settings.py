"""Settings of the integrations service (environment prefix INTEGRATIONS_)."""

from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class IntegrationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTEGRATIONS_", extra="ignore")

    service_name: str = "integrations"
