"""Local infrastructure: the one implementation that `make run`, the test fixtures and the
benchmarks use to get a Kafka-compatible broker and a PostgreSQL server on one machine."""

import os

# The processes that use this package start others (services, the simulator) after they have
# talked gRPC (health checks); grpc's fork handlers can then deadlock the fork (grpc/grpc#37259:
# subprocess.Popen hangs). Every child here execs at once, so the handlers are not needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

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
