"""The routing application against the real PostgreSQL event store (a fresh database per test).

Test modules are imported with `--import-mode=importlib`, so they get helpers through fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from contactcenter.eventstore import PgPool, PostgresEventStore, apply_migrations, create_pool

SCHEMA = "routing"


class Clock:
    """A settable clock for the application (the engine never reads one itself)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[PgPool]:
    await apply_migrations(database_url, SCHEMA)
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def store(pool: PgPool) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(pool, SCHEMA)
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()
