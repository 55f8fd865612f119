"""The reporting service's settings: environment variables prefixed `CC_REPORTING_`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactcenter.servicekit import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_REPORTING_", env_nested_delimiter="__", extra="ignore"
    )

    grpc_port: int = Field(default=50054, ge=0, le=65535)
    #: The wallboard page, its server-sent events and /metrics (tests pass 0).
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8084, ge=0, le=65535)
    #: The projection's consumer: a low fetch wait is what makes the wallboard fresh.
    projection_fetch_max_wait_ms: int = Field(default=5, ge=0)
    projection_max_records: int = Field(default=2_000, ge=1)
    #: The live projection's consumer group (tests that share a broker with another reporting
    #: service give theirs its own).
    projection_group_id: str = "reporting.live"
