"""The WFM service's settings: environment variables prefixed `CC_WFM_`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactcenter.servicekit import ServiceSettings


class WfmSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_WFM_", env_nested_delimiter="__", extra="ignore"
    )

    #: The service's well-known local port (`make run`); tests pass 0.
    grpc_port: int = Field(default=50056, ge=0, le=65535)
    #: Where reporting's gRPC API listens (interval history for forecasting).
    reporting_address: str = "127.0.0.1:50054"
    #: An agent out of adherence this long raises an exception event.
    adherence_threshold_s: float = Field(default=300.0, gt=0)
    #: How often the live adherence checker runs, and WatchAdherence polls at most.
    adherence_check_interval_s: float = Field(default=5.0, gt=0)
