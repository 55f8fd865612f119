"""Fixtures of the event store tests: a migrated schema on a fresh database, both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import asyncpg
import pytest

from contactcenter.contracts.events import DomainEvent, EventRegistry
from contactcenter.eventstore import (
    EventStore,
    InMemoryEventStore,
    PostgresEventStore,
    apply_migrations,
)

SCHEMA = "svc"

registry = EventRegistry()


@registry.register
class ThingHappened(DomainEvent):
    event_type: ClassVar[str] = "testing.ThingHappened.v1"
    n: int
    label: str = ""


@registry.register
class ThingRenamed(DomainEvent):
    event_type: ClassVar[str] = "testing.ThingRenamed.v1"
    name: str


@pytest.fixture
def schema() -> str:
    """The schema that the `pool` fixture migrated."""
    return SCHEMA


@pytest.fixture
def events_registry() -> EventRegistry:
    return registry


@pytest.fixture
def happened() -> Callable[..., ThingHappened]:
    """`happened(tenant_id, n, **fields)` -> a new ThingHappened."""

    def make(tenant_id: str, n: int = 0, **fields: Any) -> ThingHappened:
        return ThingHappened(tenant_id=tenant_id, n=n, **fields)

    return make


@pytest.fixture
def renamed() -> Callable[..., ThingRenamed]:
    def make(tenant_id: str, name: str, **fields: Any) -> ThingRenamed:
        return ThingRenamed(tenant_id=tenant_id, name=name, **fields)

    return make


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database whose schema `svc` has the event store's tables."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=24)
    await apply_migrations(pool, SCHEMA)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def pg_store(pool: asyncpg.Pool) -> AsyncIterator[PostgresEventStore]:
    store = PostgresEventStore(pool, SCHEMA)
    yield store
    await store.aclose()


@pytest.fixture
async def pg_group_store(pool: asyncpg.Pool) -> AsyncIterator[PostgresEventStore]:
    """The PostgreSQL store with group commit (concurrent appends share statements)."""
    store = PostgresEventStore(pool, SCHEMA, group_commit=True)
    yield store
    await store.aclose()


@pytest.fixture(params=["postgres", "postgres-group-commit", "memory"])
def store(request: pytest.FixtureRequest) -> EventStore:
    """Each contract test runs against every implementation."""
    if request.param == "memory":
        return InMemoryEventStore()
    if request.param == "postgres-group-commit":
        grouped: PostgresEventStore = request.getfixturevalue("pg_group_store")
        return grouped
    pg: PostgresEventStore = request.getfixturevalue("pg_store")
    return pg
