"""Local infrastructure: the one implementation that `make run`, the test fixtures and the
benchmarks use to get a Kafka-compatible broker and a PostgreSQL server on one machine."""

from contactcenter.infra.errors import InfraError
from contactcenter.infra.kafka import KafkaBroker, start_kafka
from contactcenter.infra.postgres import PostgresServer, start_postgres
from contactcenter.infra.stack import LocalInfra

__all__ = [
    "InfraError",
    "KafkaBroker",
    "LocalInfra",
    "PostgresServer",
    "start_kafka",
    "start_postgres",
]
