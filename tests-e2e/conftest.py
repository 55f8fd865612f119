"""Fixtures of the end-to-end suites: the whole system, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from contactcenter.infra.paths import state_dir
from contactcenter.testing.fixtures import TestInfra
from contactcenter.testing.system import System, running_system


@pytest.fixture(scope="session")
def system(infra: TestInfra) -> Iterator[System]:
    """Every service as its own process (as `make run` starts them), on free ports, each with a
    database of its own; started on first use, stopped at the end of the session."""
    log_dir = state_dir() / "logs" / "e2e"
    with running_system(infra.database_url, infra.kafka_bootstrap, log_dir) as running:
        yield running
