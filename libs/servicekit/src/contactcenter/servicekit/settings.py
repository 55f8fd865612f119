"""Settings every service shares; a service subclasses them with its own env prefix:

class InteractionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CC_INTERACTIONS_", env_nested_delimiter="__")
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contactcenter.grpckit import AuthSettings, GrpcServerSettings
from contactcenter.messaging.settings import KafkaSettings


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    database_url: str = "postgresql://postgres@localhost:5432/postgres"
    #: PostgreSQL schema of the service's tables; defaults to the service name.
    db_schema: str | None = None
    db_pool_min_size: int = Field(default=2, ge=1)
    db_pool_max_size: int = Field(default=20, ge=1)
    #: Concurrent appends to the event store share one statement (one round trip, one
    #: commit) when they queue up behind earlier ones (`PostgresEventStore(group_commit=)`).
    db_group_commit: bool = False
    #: How long start-up waits for the database and the broker before giving up.
    startup_timeout_s: float = Field(default=60.0, gt=0)

    kafka_bootstrap_servers: str = "localhost:9092"
    #: Partitions of the topics the service creates when they do not exist yet.
    kafka_partitions: int = Field(default=6, ge=1)
    #: Tansu answers a waiting fetch only when fetch_max_wait_ms expires, so this bounds the
    #: consumer latency; 25 ms keeps an idle service near 7% of a core (5 ms: 17%, and as much
    #: again in the broker). The latency-critical routing core sets 5.
    kafka_fetch_max_wait_ms: int = Field(default=25, ge=0)
    kafka_session_timeout_ms: int = Field(default=10_000, gt=0)
    kafka_heartbeat_interval_ms: int = Field(default=3_000, gt=0)

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)
    #: Processes serving the gRPC port together (SO_REUSEPORT), for a CPU-bound service on a
    #: machine with several cores: each is a full replica (the outbox relay and the service's
    #: own tailers run in one of them at a time, the others stand by). Needs a fixed port.
    workers: int = Field(default=1, ge=1, le=64)
    #: Share the gRPC port with other processes (set for the workers; see `workers`).
    grpc_reuse_port: bool = False
    auth: AuthSettings = Field(default_factory=AuthSettings)

    log_level: str = "INFO"
    #: The event loop of `python -m contactcenter.<service>` (and its workers): uvloop spends
    #: about a fifth less CPU per gRPC call than asyncio's own loop (bench/profiles.py).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    #: How long the ids of applied events are kept (redeliveries are recognised by them),
    #: and how often older ones are pruned.
    applied_retention_s: float = Field(default=7 * 86400.0, gt=0)
    prune_applied_every_s: float = Field(default=3600.0, gt=0)

    def kafka(self, client_id: str) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.kafka_bootstrap_servers,
            client_id=client_id,
            fetch_max_wait_ms=self.kafka_fetch_max_wait_ms,
            session_timeout_ms=self.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.kafka_heartbeat_interval_ms,
        )

    def grpc(self) -> GrpcServerSettings:
        return GrpcServerSettings(
            host=self.grpc_host,
            port=self.grpc_port,
            auth=self.auth,
            reuse_port=self.grpc_reuse_port or self.workers > 1,
        )
