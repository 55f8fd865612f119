"""Broker plus database, started together and stopped in reverse order."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from contactcenter.infra.kafka import KafkaBroker, start_kafka
from contactcenter.infra.postgres import PostgresServer, start_postgres


class LocalInfra:
    """`with LocalInfra() as infra:` gives `infra.kafka_bootstrap` and `infra.database_url`.

    Each part is the external one when its environment variable is set
    (`KAFKA_BOOTSTRAP_SERVERS`, `DATABASE_URL`), else a local process we start and stop.
    """

    def __init__(
        self,
        *,
        kafka_port: int | None = None,
        postgres_data_dir: Path | None = None,
        durable: bool = True,
        fresh: bool = False,
    ) -> None:
        self._kafka_port = kafka_port
        self._postgres_data_dir = postgres_data_dir
        self._durable = durable
        self._fresh = fresh
        self.kafka: KafkaBroker | None = None
        self.postgres: PostgresServer | None = None

    @property
    def kafka_bootstrap(self) -> str:
        assert self.kafka is not None, "LocalInfra is not started"
        return self.kafka.bootstrap_servers

    @property
    def database_url(self) -> str:
        assert self.postgres is not None, "LocalInfra is not started"
        return self.postgres.url

    def start(self) -> LocalInfra:
        try:
            self.postgres = start_postgres(
                self._postgres_data_dir, durable=self._durable, fresh=self._fresh
            )
            self.kafka = start_kafka(self._kafka_port)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.kafka is not None:
            self.kafka.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def __enter__(self) -> LocalInfra:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
