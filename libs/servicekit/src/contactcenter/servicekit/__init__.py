"""The process skeleton every service runs (one piece of code for one job):
settings -> telemetry -> database pool + migrations -> broker + topics + projections ->
outbox relay -> gRPC server whose health says SERVING only when all of that is ready."""

from contactcenter.servicekit.app import Loop, ServiceApp, ServiceContext, ServiceDefinition
from contactcenter.servicekit.paths import migrations_dir
from contactcenter.servicekit.settings import ServiceSettings
from contactcenter.servicekit.workers import GrpcWorkers

__all__ = [
    "GrpcWorkers",
    "Loop",
    "ServiceApp",
    "ServiceContext",
    "ServiceDefinition",
    "ServiceSettings",
    "migrations_dir",
]
