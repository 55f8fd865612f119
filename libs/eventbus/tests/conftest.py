from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contactcenter.contracts.events import DomainEvent
from contactcenter.eventstore import PostgresEventStore, apply_migrations


class ProbeRecorded(DomainEvent):
    """A test-only event on the interactions topic; the relay never decodes events."""

    event_type = "interactions.RelayProbeRecorded.v1"
    seq: int


@pytest.fixture
def schema() -> str:
    return f"bus_{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def pool(database_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    await apply_migrations(database_url, schema)
    pool = await asyncpg.create_pool(database_url, min_size=2, max_size=20)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def store(pool: asyncpg.Pool, schema: str) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(pool, schema)
    yield store
    await store.aclose()
