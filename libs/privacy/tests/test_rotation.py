"""Master key versions and rotation of a key store, against the real PostgreSQL: after the
rotation every key opens with the new master key alone, erased keys stay erased, an interrupted
rotation resumes, keys from before versions existed still open, the index root survives."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from contactcenter.privacy import (
    DDL,
    ERASED,
    INDEX_ROOT,
    SECRETS_DDL,
    KeyRing,
    KeyRingSecrets,
    SubjectKeys,
    UnknownMasterKey,
    load_index_root,
    master_key_id,
    open_or_erased,
    parse_master_keys,
    rewrap_keys,
)

SCHEMA = "rot"
OLD, NEW = os.urandom(32), os.urandom(32)


def ring(master: bytes, retired: tuple[bytes, ...] = ()) -> KeyRing:
    return KeyRing(master, retired, context="t", subject_kind="i")


def legacy_wrap(master: bytes, tenant: str, subject: str, key: bytes) -> bytes:
    """A key wrapped as before master key versions existed (`nonce || ciphertext+tag`)."""
    aead = AESGCM(hashlib.sha256(b"t/key-wrap/v1" + master).digest())
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, key, f"{tenant}/{subject}".encode())


def test_a_wrapped_key_names_its_master_key_and_opens_while_it_is_configured() -> None:
    data_key = KeyRing.new_data_key()
    wrapped = ring(OLD).wrap("t", "s", data_key)
    assert KeyRing.wrapped_by(wrapped) == master_key_id(OLD, "t")
    rotating = ring(NEW, (OLD,))
    assert rotating.unwrap("t", "s", wrapped) == data_key
    assert not rotating.is_current(wrapped)
    rewrapped = rotating.rewrap("t", "s", wrapped)
    assert rotating.is_current(rewrapped) and rotating.rewrap("t", "s", rewrapped) == rewrapped
    assert ring(NEW).unwrap("t", "s", rewrapped) == data_key
    with pytest.raises(UnknownMasterKey, match=master_key_id(OLD, "t")):
        ring(NEW).unwrap("t", "s", wrapped)


def test_keys_from_before_versions_open_with_whichever_key_fits() -> None:
    data_key = KeyRing.new_data_key()
    legacy = legacy_wrap(OLD, "t", "s", data_key)
    assert ring(OLD).unwrap("t", "s", legacy) == data_key  # the current wire format reads
    rotating = ring(NEW, (OLD,))
    assert KeyRing.wrapped_by(legacy) is None
    assert rotating.unwrapping_key_id("t", "s", legacy) == master_key_id(OLD, "t")
    assert ring(NEW).unwrap("t", "s", rotating.rewrap("t", "s", legacy)) == data_key
    with pytest.raises(UnknownMasterKey):
        ring(NEW).unwrap("t", "s", legacy)


def test_tenant_secrets_come_from_the_index_root_not_the_master_key() -> None:
    root = os.urandom(32)
    before = KeyRing(OLD, context="t", subject_kind="i", index_root=root)
    after = KeyRing(NEW, context="t", subject_kind="i", index_root=root)
    assert before.digest("t1", "ann@example.com") == after.digest("t1", "ann@example.com")
    with pytest.raises(RuntimeError, match="not loaded"):
        ring(NEW).digest("t1", "x")


def test_retired_keys_setting_is_parsed_and_checked() -> None:
    import base64

    text = ",".join(base64.b64encode(k).decode() for k in (OLD, NEW))
    assert parse_master_keys(text, "X") == [OLD, NEW]
    assert parse_master_keys(" ", "X") == []
    with pytest.raises(ValueError, match="X: each key must be base64 of 32 bytes"):
        parse_master_keys("c2hvcnQ=", "X")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await conn.execute(
            f"drop schema if exists {SCHEMA} cascade; create schema {SCHEMA}; "
            f"set search_path to {SCHEMA}; {DDL} {SECRETS_DDL}"
        )
    try:
        yield pool
    finally:
        await pool.close()


async def test_rotation_rewraps_every_key_resumably_and_erased_keys_stay_erased(
    pool: asyncpg.Pool,
) -> None:
    old = SubjectKeys(pool, SCHEMA, ring(OLD))
    sealed: dict[tuple[str, str], str] = {}
    for tenant in ("t1", "t2"):
        for n in range(7):
            subject = f"s-{n}"
            cipher = await old.for_writing(tenant, subject, [f"owner-{n % 3}"])
            sealed[(tenant, subject)] = cipher.seal(f"words of {tenant}/{subject}")
    # One key in the format from before versions existed.
    data_key = ring(OLD).unwrap("t1", "s-0", (await _wrapped(pool, "t1", "s-0")) or b"")
    async with pool.acquire() as conn:
        await conn.execute(
            f"update {SCHEMA}.subject_keys set wrapped_key = $1 "
            "where tenant_id = 't1' and subject_id = 's-0'",
            legacy_wrap(OLD, "t1", "s-0", data_key),
        )
    # The identity-index root as existing data has it, stored on first use.
    secrets = KeyRingSecrets(pool, SCHEMA)
    first = ring(OLD)
    await load_index_root(secrets, old.table, first)
    ref_before = first.digest("t1", "ann@example.com")
    # Erased before the rotation: owner-1 of t2 (s-1, s-4).
    async with pool.acquire() as conn, conn.transaction():
        assert await old.shred_owned(conn, "t2", ["owner-1"]) == ["s-1", "s-4"]

    rotating = ring(NEW, (OLD,))
    # Interrupted after the first batch.
    progress: list[int] = []

    def stop(done: int) -> None:
        progress.append(done)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await rewrap_keys(pool, rotating, old.table, secrets=secrets, batch=4, on_batch=stop)
    assert progress == [5]  # the index root and four keys
    # Meanwhile an erasure (t1 owner-2: s-2, s-5) lands; the resumed run keeps it.
    async with pool.acquire() as conn, conn.transaction():
        await old.shred_owned(conn, "t1", ["owner-2"])
    report = await rewrap_keys(pool, rotating, old.table, secrets=secrets, batch=4)
    assert (report.master_key_id, report.rewrapped, report.remaining) == (
        master_key_id(NEW, "t"),
        # 14 keys; t1 s-0..s-3 done before the interruption; t2 s-1, s-4 and t1 s-5 erased
        14 - 4 - 3,
        0,
    )
    again = await rewrap_keys(pool, rotating, old.table, secrets=secrets)
    assert (again.rewrapped, again.remaining) == (0, 0)

    # The old master key gone: every key opens with the new one alone, erased ones stay erased.
    new = SubjectKeys(pool, SCHEMA, ring(NEW))
    erased = {("t2", "s-1"), ("t2", "s-4"), ("t1", "s-2"), ("t1", "s-5")}
    for tenant in ("t1", "t2"):
        readers = await new.for_reading(tenant, [s for t, s in sealed if t == tenant])
        for subject, cipher in readers.items():
            text = open_or_erased(cipher, sealed[(tenant, subject)])
            expected = ERASED if (tenant, subject) in erased else f"words of {tenant}/{subject}"
            assert text == expected
    # A late write of an erased subject seals nothing.
    late = await new.for_writing("t2", "s-1")
    assert open_or_erased(late, sealed[("t2", "s-1")]) == ERASED
    # The identity-index root survived: the same keyed hashes under the new master key.
    after = ring(NEW)
    await load_index_root(secrets, new.table, after)
    assert after.digest("t1", "ann@example.com") == ref_before
    stored = await secrets.get(INDEX_ROOT)
    assert stored is not None and after.is_current(stored)


async def test_a_fresh_store_gets_an_index_root_from_the_key_of_existing_data(
    pool: asyncpg.Pool,
) -> None:
    """Existing keys under a retired key: the root is what that key derived, so the identity
    references already stored keep matching."""
    old = SubjectKeys(pool, SCHEMA, ring(OLD))
    await old.for_writing("t1", "s-1")
    rotating = ring(NEW, (OLD,))
    await load_index_root(KeyRingSecrets(pool, SCHEMA), old.table, rotating)
    before = ring(OLD)
    before.set_index_root(before.legacy_index_root())
    assert rotating.digest("t1", "x") == before.digest("t1", "x")


async def _wrapped(pool: asyncpg.Pool, tenant: str, subject: str) -> bytes | None:
    async with pool.acquire() as conn:
        value: bytes | None = await conn.fetchval(
            f"select wrapped_key from {SCHEMA}.subject_keys "
            "where tenant_id = $1 and subject_id = $2",
            tenant,
            subject,
        )
    return value
