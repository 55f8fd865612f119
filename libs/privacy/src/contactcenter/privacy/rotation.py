"""Master key rotation of a key store, and the stored secrets of a key ring.

Rotating a service's master key (the operators' procedure):

1. Generate a new key; set it as the service's master key (`CC_<SERVICE>_MASTER_KEY`) and the
   old one in `CC_<SERVICE>_RETIRED_MASTER_KEYS`; roll the replicas. From then on new keys are
   wrapped with the new key and every key, old or new, opens.
2. Run `python -m contactcenter.<service> rotate-master-key` (same settings): it rewraps every
   stored key (and the stored secrets) under the new key, in batches, resumable, and exits 0
   only when none is left under another key.
3. Remove the retired key from the settings; roll the replicas. The old key can be destroyed.

Rewrapping changes only the wrapping: the data keys, hence every ciphertext, stay. A key erased
during the rotation stays erased (a key is replaced only where it is still the one read).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from contactcenter.eventstore import PgPool, apply_migrations, create_pool
from contactcenter.privacy.crypto import KeyRing

_log = logging.getLogger(__name__)

#: The table of a key ring's stored secrets, for a service's migration (in its schema).
SECRETS_DDL: Final = """
create table keyring_secrets (
    name       text primary key,
    -- The secret wrapped (like a data key) by the master key.
    wrapped    bytea not null,
    updated_at timestamptz not null default now()
);
"""
#: The name of the identity index's root secret among the stored secrets.
INDEX_ROOT: Final = "identity-index"
#: The (tenant, subject) a stored secret is wrapped for (its associated data).
_SECRET_TENANT: Final = ""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class KeyTable:
    """Where a service keeps its wrapped data keys: `schema.table (tenant_id, <subject_column>,
    <key_column>)`; a NULL key or a deleted row is an erased key."""

    schema: str
    table: str = "subject_keys"
    subject_column: str = "subject_id"
    key_column: str = "wrapped_key"

    @property
    def qualified(self) -> str:
        return f"{_q(self.schema)}.{_q(self.table)}"


class KeyRingSecrets:
    """A key ring's secrets other than data keys (`keyring_secrets`, see `SECRETS_DDL`)."""

    def __init__(self, pool: PgPool, schema: str) -> None:
        self.pool = pool
        self._t = f"{_q(schema)}.keyring_secrets"

    async def get(self, name: str) -> bytes | None:
        async with self.pool.acquire() as conn:
            wrapped: bytes | None = await conn.fetchval(
                f"select wrapped from {self._t} where name = $1", name
            )
        return wrapped

    async def add(self, name: str, wrapped: bytes) -> bytes:
        """Store `wrapped` unless a secret of that name exists; the stored one."""
        async with self.pool.acquire() as conn:
            stored: bytes = await conn.fetchval(
                f"insert into {self._t} (name, wrapped) values ($1, $2) on conflict (name) "
                "do update set name = excluded.name returning wrapped",
                name,
                wrapped,
            )
        return stored

    async def replace(self, name: str, old: bytes, new: bytes) -> bool:
        async with self.pool.acquire() as conn:
            status: str = await conn.execute(
                f"update {self._t} set wrapped = $3, updated_at = now() "
                "where name = $1 and wrapped = $2",
                name,
                old,
                new,
            )
        return status.endswith(" 1")

    async def names(self) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"select name from {self._t} order by name")
        return [r["name"] for r in rows]


async def load_index_root(secrets: KeyRingSecrets, table: KeyTable, keyring: KeyRing) -> None:
    """Give `keyring` its stored identity-index root; on the first start with a stored root,
    store the one the existing data was built with (derived, as before roots were stored, from
    the master key that wraps the existing keys of `table`; from the current one when empty)."""
    wrapped = await secrets.get(INDEX_ROOT)
    if wrapped is None:
        key_id = None
        async with secrets.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"select tenant_id, {_q(table.subject_column)} as subject, "
                f"{_q(table.key_column)} as wrapped from {table.qualified} "
                f"where {_q(table.key_column)} is not null limit 1"
            )
        if row is not None:
            key_id = keyring.unwrapping_key_id(row["tenant_id"], row["subject"], row["wrapped"])
        root = keyring.legacy_index_root(key_id)
        wrapped = await secrets.add(INDEX_ROOT, keyring.wrap(_SECRET_TENANT, INDEX_ROOT, root))
    keyring.set_index_root(keyring.unwrap(_SECRET_TENANT, INDEX_ROOT, wrapped))


@dataclass(frozen=True)
class RewrapReport:
    master_key_id: str
    #: Keys (and stored secrets) rewrapped by this run.
    rewrapped: int
    #: Keys and secrets still under another master key (0 when the rotation is complete).
    remaining: int


async def rewrap_keys(
    pool: PgPool,
    keyring: KeyRing,
    table: KeyTable,
    *,
    secrets: KeyRingSecrets | None = None,
    batch: int = 500,
    on_batch: Callable[[int], None] | None = None,
) -> RewrapReport:
    """Rewrap every stored key of `table` (and every secret of `secrets`) under `keyring`'s
    current master key, `batch` keys per transaction. Resumable: it only ever reads keys not
    under the current key, so a run after an interruption goes on where the last stopped. A key
    erased meanwhile stays erased (compare and set). `on_batch(rewrapped so far)`: progress."""
    current = keyring.current_key_id
    rewrapped = 0
    if secrets is not None:
        for name in await secrets.names():
            stored = await secrets.get(name)
            if stored is not None and not keyring.is_current(stored):
                new = keyring.rewrap(_SECRET_TENANT, name, stored)
                rewrapped += await secrets.replace(name, stored, new)
    k, s, t = _q(table.key_column), _q(table.subject_column), table.qualified
    not_current = (
        f"{k} is not null and (length({k}) <> 69 or get_byte({k}, 0) <> 2 "
        f"or substring({k} from 2 for 8) <> decode($1, 'hex'))"
    )
    select = (
        f"select tenant_id, {s} as subject, {k} as wrapped from {t} "
        f"where (tenant_id, {s}) > ($2, $3) and {not_current} "
        f"order by tenant_id, {s} limit $4"
    )
    update = (
        f"with done as (update {t} x set {k} = u.new "
        "from unnest($1::text[], $2::text[], $3::bytea[], $4::bytea[]) "
        "as u(tenant_id, subject, old, new) "
        f"where x.tenant_id = u.tenant_id and x.{s} = u.subject and x.{k} = u.old "
        "returning 1) select count(*) from done"
    )
    after = ("", "")
    while True:
        async with pool.acquire() as conn:
            rows = await conn.fetch(select, current, after[0], after[1], batch)
            if not rows:
                break
            rewraps = [keyring.rewrap(r["tenant_id"], r["subject"], r["wrapped"]) for r in rows]
            async with conn.transaction():
                done: int = await conn.fetchval(
                    update,
                    [r["tenant_id"] for r in rows],
                    [r["subject"] for r in rows],
                    [r["wrapped"] for r in rows],
                    rewraps,
                )
        rewrapped += done
        after = (rows[-1]["tenant_id"], rows[-1]["subject"])
        _log.info("rewrapped %d keys of %s under master key %s", rewrapped, t, current)
        if on_batch is not None:
            on_batch(rewrapped)
    async with pool.acquire() as conn:
        remaining: int = await conn.fetchval(
            f"select count(*) from {t} where {not_current}", current
        )
    if secrets is not None:
        for name in await secrets.names():
            stored = await secrets.get(name)
            if stored is not None and not keyring.is_current(stored):
                remaining += 1
    return RewrapReport(master_key_id=current, rewrapped=rewrapped, remaining=remaining)


async def rotate_master_key(
    database_url: str,
    schema: str,
    migrations: Sequence[Path],
    keyring: KeyRing,
    table: KeyTable,
    *,
    secrets: bool = False,
    batch: int = 500,
) -> RewrapReport:
    """A service's `rotate-master-key` command against its database: migrations first, then
    (`secrets`: the service stores its identity-index root) the root stored if it never was,
    then every key and secret rewrapped under `keyring`'s current master key."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, schema, list(migrations))
        stored = KeyRingSecrets(pool, schema) if secrets else None
        if stored is not None:
            # Before any key moves: a root never stored is derived from the key that wraps
            # the existing data.
            await load_index_root(stored, table, keyring)
        return await rewrap_keys(pool, keyring, table, secrets=stored, batch=batch)
    finally:
        await pool.close()


def report_rotation(report: RewrapReport) -> int:
    """Print what a `rotate-master-key` command did; its exit status."""
    print(
        f"master key {report.master_key_id}: {report.rewrapped} keys rewrapped, "
        f"{report.remaining} still under another key"
    )
    if report.remaining:
        print("rotation incomplete: run it again once every replica uses the new key")
        return 1
    print("rotation complete: the retired master keys can be removed")
    return 0
