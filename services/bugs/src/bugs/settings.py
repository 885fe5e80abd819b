"""Settings of the bugs service (environment prefix BUGS_)."""

from pydantic_settings import SettingsConfigDict

from bugnet_common.settings import ServiceSettings


class BugsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BUGS_", extra="ignore")

    service_name: str = "bugs"
