"""The in-process identity cache stays correct across processes: a second process (its own
Tables and cache, listening on the same database, as a worker or a replica would) follows
merges, unmerges and erasures made through the service, and never keeps a row read before a
change it was told about; without its listening connection it serves nothing cached."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from contactcenter.eventstore import create_pool
from contactcenter.profiles.adapters.identity_cache import IdentityCache
from contactcenter.profiles.adapters.tables import IdentityRow, Tables
from contactcenter.profiles.domain import Identity, IdentityKind
from contactcenter.profiles.v1 import profiles_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

EMAIL = pb.IDENTITY_KIND_EMAIL


class Other:
    """Another process of the service: its own pool, tables and listening cache."""

    def __init__(self, tables: Tables, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
        self.tables, self.stop, self.task = tables, stop, task

    @property
    def cache(self) -> IdentityCache:
        return self.tables.identity_cache


@pytest_asyncio.fixture(loop_scope="session")
async def other(service: Any) -> AsyncIterator[Other]:
    pool = await create_pool(service.database_url, min_size=1, max_size=2)
    tables = Tables(pool, "profiles")
    stop = asyncio.Event()
    task = asyncio.create_task(tables.identity_cache.listen(service.database_url, stop))
    for _ in range(200):
        if tables.identity_cache.live:
            break
        await asyncio.sleep(0.01)
    assert tables.identity_cache.live
    try:
        yield Other(tables, stop, task)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await pool.close()


async def _ref(service: Any, tenant_id: str, email: str) -> str:
    refs = await service.app.application.identity_refs(tenant_id)
    return str(refs.ref(Identity(IdentityKind.EMAIL, email)))


async def _find(other: Other, tenant_id: str, ref: str) -> IdentityRow | None:
    return await other.tables.find_identity(tenant_id, IdentityKind.EMAIL, ref)


async def test_another_process_follows_merge_unmerge_and_erasure(
    api: Any, service: Any, other: Other, eventually: Any
) -> None:
    tenant = api.tenant_id
    first = (await api.resolve(EMAIL, "cache.first@example.com")).profile_id
    second = (await api.resolve(EMAIL, "cache.second@example.com")).profile_id
    ref = await _ref(service, tenant, "cache.first@example.com")

    row = await _find(other, tenant, ref)
    assert row is not None and row.effective_id == first
    hits = other.cache.hits
    assert (await _find(other, tenant, ref)) == row
    assert other.cache.hits == hits + 1  # served from the cache

    await api.call(
        "MergeProfiles", target_profile_id=second, source_profile_id=first, roles=["supervisor"]
    )
    # The process that merged answers from the new state at once ...
    assert (await api.resolve(EMAIL, "cache.first@example.com")).profile_id == second

    # ... the other one once the notification reached it: its entry was dropped, not aged out.
    async def lands_on(expected: str) -> None:
        found = await _find(other, tenant, ref)
        assert found is not None and found.effective_id == expected

    await eventually(lambda: lands_on(second), within_s=5)
    await lands_on(second)  # and it stays there (cached again, from the new state)

    await api.call("UnmergeProfile", profile_id=first, roles=["supervisor"])
    assert (await api.resolve(EMAIL, "cache.first@example.com")).profile_id == first
    await eventually(lambda: lands_on(first), within_s=5)

    await api.call("EraseProfile", profile_id=first, roles=["admin"], reason="test")

    async def gone() -> None:
        assert await _find(other, tenant, ref) is None

    await eventually(gone, within_s=5)
    again = await api.resolve(EMAIL, "cache.first@example.com")
    assert again.created and again.profile_id != first


async def test_a_row_read_before_an_invalidation_is_not_kept(other: Other) -> None:
    cache = other.cache
    row = IdentityRow("p1", "p1", "create", None, True)
    generation = cache.generation
    cache.invalidate("t1")  # a change notified while the lookup was reading
    cache.put("t1", "email", "ref", row, generation)
    assert cache.get("t1", "email", "ref") is None
    cache.put("t1", "email", "ref", row, cache.generation)
    assert cache.get("t1", "email", "ref") == row
    # Unconfirmed claims are never kept: the next resolve must repair them.
    claim = IdentityRow("p2", "p2", "create", "r", False)
    cache.put("t1", "email", "ref2", claim, cache.generation)
    assert cache.get("t1", "email", "ref2") is None
    # Tenants are dropped apart.
    cache.put("t2", "email", "ref", row, cache.generation)
    cache.invalidate("t1")
    assert cache.get("t1", "email", "ref") is None
    assert cache.get("t2", "email", "ref") == row


async def test_without_its_listening_connection_nothing_is_served_from_the_cache(
    api: Any, service: Any, other: Other
) -> None:
    tenant = api.tenant_id
    await api.resolve(EMAIL, "cache.lost@example.com")
    ref = await _ref(service, tenant, "cache.lost@example.com")
    assert await _find(other, tenant, ref) is not None
    assert len(other.cache) > 0

    conn = await asyncpg.connect(service.database_url)
    try:
        await conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where query like 'LISTEN%' and datname = current_database()"
        )
    finally:
        await conn.close()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(other.task, 10)
    # Not live, empty: lookups go to PostgreSQL (and fill nothing) until it listens again.
    assert not other.cache.live and len(other.cache) == 0
    hits, misses = other.cache.hits, other.cache.misses
    assert await _find(other, tenant, ref) is not None
    assert (other.cache.hits, other.cache.misses, len(other.cache)) == (hits, misses, 0)
