"""Apache Kafka (KRaft) and PostgreSQL in containers, for users who have a Docker engine.

Selected with `CC_TESTCONTAINERS=1`; without it the fixtures use the local processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
POSTGRES_IMAGE = "postgres:17-alpine"


@dataclass
class ContainerInfra:
    kafka_bootstrap: str
    database_url: str


@contextmanager
def container_infra() -> Iterator[ContainerInfra]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer

    with (
        PostgresContainer(POSTGRES_IMAGE, driver=None) as postgres,
        KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka,
    ):
        yield ContainerInfra(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            database_url=postgres.get_connection_url(),
        )
