"""pytest plugin (loaded by the root conftest): the real infrastructure for tests.

- `infra` (session): a broker and a PostgreSQL server, started once per test session through
  the same launcher as `make run` (or the external ones from `KAFKA_BOOTSTRAP_SERVERS` /
  `DATABASE_URL`, or containers with `CC_TESTCONTAINERS=1`), stopped at the end.
- `database_url` (function): a fresh, empty database on that server, dropped afterwards.
- `kafka_bootstrap` (session): the broker's bootstrap servers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from contactcenter.infra import LocalInfra
from contactcenter.infra.paths import state_dir
from contactcenter.testing.services import create_database, drop_database


@dataclass
class TestInfra:
    __test__ = False  # a fixture's value, not a test class (pytest collects Test* names)

    kafka_bootstrap: str
    database_url: str
    local: LocalInfra | None = None  # set when the processes are ours (to kill/restart in tests)


@pytest.fixture(scope="session")
def infra() -> Iterator[TestInfra]:
    if os.environ.get("CC_TESTCONTAINERS") == "1":
        from contactcenter.testing.containers import container_infra

        with container_infra() as c:
            yield TestInfra(kafka_bootstrap=c.kafka_bootstrap, database_url=c.database_url)
        return
    # A throwaway cluster per session (fsync off: its data dies with the run anyway).
    data_dir: Path = state_dir() / f"test-postgres-{os.getpid()}"
    local = LocalInfra(kafka_port=0, postgres_data_dir=data_dir, durable=False, fresh=True)
    with local:
        yield TestInfra(
            kafka_bootstrap=local.kafka_bootstrap, database_url=local.database_url, local=local
        )
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: TestInfra) -> str:
    return infra.kafka_bootstrap


@pytest.fixture
def database_url(infra: TestInfra) -> Iterator[str]:
    """A new empty database for this test only."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    yield asyncio.run(create_database(infra.database_url, name))
    asyncio.run(drop_database(infra.database_url, name))


@pytest.fixture
def tenant_id() -> str:
    """A tenant of its own per test, so tests sharing the broker never read each other's events."""
    return f"t-{uuid.uuid4().hex[:12]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the real infrastructure `infra`, so that
    `KAFKA_BOOTSTRAP_SERVERS=<apache kafka> DATABASE_URL=<postgres> pytest -m infra` runs exactly
    those against an external Apache Kafka and PostgreSQL."""
    for item in items:
        if "infra" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.infra)
