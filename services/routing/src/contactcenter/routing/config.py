"""The routing service's settings: environment variables prefixed `CC_ROUTING_` (nested ones
with `__`, e.g. `CC_ROUTING_AUTH__SIGNING_KEY`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactcenter.servicekit import ServiceSettings


class RoutingSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CC_ROUTING_", env_nested_delimiter="__", extra="ignore"
    )

    #: The service's well-known local port (`make run`, docker-compose); tests pass 0.
    grpc_port: int = Field(default=50052, ge=0, le=65535)
    #: The latency-critical core: a short broker wait bounds how late a queued contact is seen.
    kafka_fetch_max_wait_ms: int = Field(default=5, ge=0)
    #: Failover time: the group gives a dead instance's tenants to another after this.
    kafka_session_timeout_ms: int = Field(default=6_000, gt=0)
    kafka_heartbeat_interval_ms: int = Field(default=1_500, gt=0)

    #: Recent decisions each tenant's engine keeps for ExplainDecision.
    explain_capacity: int = Field(default=10_000, ge=0)
    #: A tenant's engine is snapshotted every this many events (a rebuild reads the snapshot
    #: and the events after it), by a child process of the service; 0: never.
    snapshot_every: int = Field(default=1_000, ge=0)
    #: How often the snapshotter looks for tenants due (seconds).
    snapshot_poll_s: float = Field(default=2.0, gt=0)
    #: Offers an AgentStream buffers for a slow desktop (the oldest are dropped beyond).
    agent_stream_buffer: int = Field(default=256, ge=1)
    #: An agent desktop that sends no Heartbeat (and holds no AgentStream) for this long is
    #: logged off (reason `heartbeat_lost`); 0 keeps no leases.
    presence_lease_s: float = Field(default=30.0, ge=0)
    #: How often expired leases are looked for (seconds).
    lease_sweep_interval_s: float = Field(default=1.0, gt=0)
    #: The timer loop re-checks at least this often (seconds), even when nothing changed.
    timer_max_sleep_s: float = Field(default=1.0, gt=0)
