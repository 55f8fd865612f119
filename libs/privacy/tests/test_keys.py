"""The PostgreSQL key store: keys per subject, owners, shredding by owner."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from contactcenter.privacy import DDL, ERASED, KeyRing, SubjectKeys, open_or_erased

SCHEMA = "svc"


@pytest.fixture
async def keys(database_url: str) -> AsyncIterator[SubjectKeys]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute(f"create schema {SCHEMA}; set search_path to {SCHEMA}; {DDL}")
    try:
        yield SubjectKeys(pool, SCHEMA, KeyRing(bytes(32), context="t", subject_kind="i"))
    finally:
        await pool.close()


async def test_erasing_an_owner_destroys_the_keys_of_its_subjects(keys: SubjectKeys) -> None:
    first = await keys.for_writing("t1", "i-1", ["p-1"])
    sealed = first.seal("my words")
    again = await keys.for_writing("t1", "i-1", ["p-2"])  # same key; a second owner
    assert again.open(sealed) == "my words"
    other = (await keys.for_writing("t1", "i-2", ["p-9"])).seal("someone else")
    same_id_other_tenant = (await keys.for_writing("t2", "i-1", ["p-2"])).seal("tenant two")

    async with keys.pool.acquire() as conn, conn.transaction():
        assert await keys.shred_owned(conn, "t1", ["p-2"]) == ["i-1"]
    readers = await keys.for_reading("t1", ["i-1", "i-2", "i-unknown"])
    assert open_or_erased(readers["i-1"], sealed) == ERASED
    assert open_or_erased(readers["i-2"], other) == "someone else"
    assert open_or_erased(readers["i-unknown"], other) == ERASED
    (t2,) = (await keys.for_reading("t2", ["i-1"])).values()
    assert t2.open(same_id_other_tenant) == "tenant two"

    # Idempotent, and a destroyed key is never created again.
    async with keys.pool.acquire() as conn, conn.transaction():
        assert await keys.shred_owned(conn, "t1", ["p-1"]) == ["i-1"]
    late = await keys.for_writing("t1", "i-1", ["p-1"])
    with pytest.raises(RuntimeError):
        late.seal("late words")


async def test_shredding_subjects_directly(keys: SubjectKeys) -> None:
    sealed = (await keys.for_writing("t1", "m-1")).seal("an email")
    async with keys.pool.acquire() as conn, conn.transaction():
        await keys.shred(conn, "t1", ["m-1", "m-never-used"])
        await keys.shred(conn, "t1", ["m-1"])  # idempotent
    readers = await keys.for_reading("t1", ["m-1"])
    assert open_or_erased(readers["m-1"], sealed) == ERASED
    with pytest.raises(RuntimeError):
        (await keys.for_writing("t1", "m-never-used")).seal("later")


async def test_many_subjects_at_once_are_as_one_at_a_time(keys: SubjectKeys) -> None:
    existing = (await keys.for_writing("t1", "m-old", ["p-1"])).seal("kept key")
    async with keys.pool.acquire() as conn, conn.transaction():
        await keys.shred(conn, "t1", ["m-shredded"])
        ciphers = await keys.for_writing_many(
            conn,
            [
                ("t1", "m-new", ["p-2"]),
                ("t1", "m-old", ["p-3"]),
                ("t2", "m-new", []),  # the same id in another tenant: another key
                ("t1", "m-shredded", ["p-2"]),
                ("t1", "m-new", ["p-4"]),  # twice in one call: one key
            ],
        )
    async with keys.pool.acquire() as conn:
        assert await keys.for_writing_many(conn, []) == []
    new, old, other_tenant, shredded, new_again = ciphers
    assert old.open(existing) == "kept key"
    sealed = new.seal("fresh")
    assert new_again.open(sealed) == "fresh"
    assert other_tenant.open(sealed) is None  # another key
    with pytest.raises(RuntimeError):
        shredded.seal("never")
    readers = await keys.for_reading("t1", ["m-new"])
    assert readers["m-new"].open(sealed) == "fresh"
    # Every owner was recorded: erasing any of them destroys the key.
    async with keys.pool.acquire() as conn, conn.transaction():
        assert await keys.shred_owned(conn, "t1", ["p-4"]) == ["m-new"]
        assert await keys.shred_owned(conn, "t1", ["p-3"]) == ["m-old"]
