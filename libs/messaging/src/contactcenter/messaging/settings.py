"""Kafka settings shared by every service; each service nests them in its own pydantic-settings
config (one env prefix per service), e.g. `ROUTING_KAFKA__BOOTSTRAP_SERVERS`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class KafkaSettings(BaseModel):
    """Connection, producer and consumer tuning. Defaults suit Apache Kafka and Tansu alike;
    latency-critical consumers lower `fetch_max_wait_ms` (Tansu answers a waiting fetch only
    when it expires, not when data arrives)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    client_id: str = Field(default="contactcenter", min_length=1)
    request_timeout_ms: int = Field(default=40_000, gt=0)

    # Producer. No idempotent/transactional producer: Tansu rejects it; delivery is at least
    # once and consumers de-duplicate by event id.
    acks: Literal["all", 0, 1] = "all"
    linger_ms: int = Field(default=0, ge=0)

    # Consumer.
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    fetch_max_wait_ms: int = Field(default=100, ge=0)
    session_timeout_ms: int = Field(default=10_000, gt=0)
    heartbeat_interval_ms: int = Field(default=3_000, gt=0)
    max_poll_interval_ms: int = Field(default=300_000, gt=0)
    max_batch_records: int = Field(default=500, gt=0)
    batch_timeout_ms: int = Field(default=100, ge=0)

    # Processing: bounded retries with exponential backoff, then the DLQ.
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_ms: int = Field(default=100, ge=0)
    retry_backoff_max_ms: int = Field(default=2_000, ge=0)

    # FastStream logs every message at this level; INFO would flood at thousands per second.
    message_log_level: Literal["DEBUG", "INFO", "WARNING"] = "DEBUG"

    @model_validator(mode="after")
    def _check_timeouts(self) -> KafkaSettings:
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be lower than session_timeout_ms")
        if self.retry_backoff_max_ms < self.retry_backoff_ms:
            raise ValueError("retry_backoff_max_ms must not be lower than retry_backoff_ms")
        return self

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
