"""Subject keys in a service's PostgreSQL schema, and the owners that erase them.

Tables (a service adds them in its own migration, see `DDL`): `subject_keys` holds one wrapped
data key per subject (NULL once destroyed: the row stays, so a late write of the subject seals
nothing), `subject_owners` the owners a subject's data belongs to (a customer profile: erasing
the profile destroys the keys of every subject it owns, e.g. every interaction of the customer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contactcenter.eventstore import PgConnection, PgPool
from contactcenter.privacy.crypto import KeyRing, ShreddedCipher, SubjectCipher
from contactcenter.privacy.rotation import KeyTable

#: The tables, for a service's migration (`{schema}` is the service's schema, quoted).
DDL = """
create table subject_keys (
    tenant_id   text not null,
    subject_id  text not null,
    -- The data key wrapped by the master key; NULL once destroyed (erasure).
    wrapped_key bytea,
    created_at  timestamptz not null default now(),
    shredded_at timestamptz,
    constraint subject_keys_pkey primary key (tenant_id, subject_id)
);
create table subject_owners (
    tenant_id  text not null,
    owner_id   text not null,
    subject_id text not null,
    constraint subject_owners_pkey primary key (tenant_id, owner_id, subject_id)
);
create index subject_owners_subject_idx on subject_owners (tenant_id, subject_id);
"""

SubjectCipherOrShredded = SubjectCipher | ShreddedCipher


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SubjectKeys:
    def __init__(self, pool: PgPool, schema: str, keyring: KeyRing) -> None:
        self.pool = pool
        self.keyring = keyring
        #: Where the keys are (for `rewrap_keys`).
        self.table = KeyTable(schema)
        s = _q(schema)
        self._sql_ensure = (
            f"insert into {s}.subject_keys (tenant_id, subject_id, wrapped_key) "
            "values ($1, $2, $3) on conflict (tenant_id, subject_id) "
            "do update set tenant_id = excluded.tenant_id returning wrapped_key"
        )
        self._sql_own = (
            f"insert into {s}.subject_owners (tenant_id, owner_id, subject_id) "
            "select $1, o, $2 from unnest($3::text[]) o on conflict do nothing"
        )
        self._sql_own_many = (
            f"insert into {s}.subject_owners (tenant_id, owner_id, subject_id) "
            "select * from unnest($1::text[], $2::text[], $3::text[]) on conflict do nothing"
        )
        self._sql_ensure_many = (
            f"insert into {s}.subject_keys as k (tenant_id, subject_id, wrapped_key) "
            "select * from unnest($1::text[], $2::text[], $3::bytea[]) "
            "on conflict (tenant_id, subject_id) do update set tenant_id = k.tenant_id "
            "returning tenant_id, subject_id, wrapped_key"
        )
        self._sql_keys = (
            f"select subject_id, wrapped_key from {s}.subject_keys "
            "where tenant_id = $1 and subject_id = any($2::text[])"
        )
        self._sql_shred = (
            f"update {s}.subject_keys set wrapped_key = null, shredded_at = now() "
            "where tenant_id = $1 and subject_id in (select subject_id from "
            f"{s}.subject_owners where tenant_id = $1 and owner_id = any($2::text[])) "
            "and wrapped_key is not null"
        )
        self._sql_shred_subjects = (
            f"insert into {s}.subject_keys (tenant_id, subject_id, wrapped_key, shredded_at) "
            "select $1, x, null, now() from unnest($2::text[]) x "
            "on conflict (tenant_id, subject_id) do update set wrapped_key = null, "
            "shredded_at = coalesce(subject_keys.shredded_at, now())"
        )
        self._sql_owned = (
            f"select distinct subject_id from {s}.subject_owners "
            "where tenant_id = $1 and owner_id = any($2::text[]) order by subject_id"
        )

    async def for_writing(
        self,
        tenant_id: str,
        subject_id: str,
        owners: Iterable[str] = (),
        *,
        conn: PgConnection | None = None,
    ) -> SubjectCipherOrShredded:
        """The subject's cipher, its key created on first use, with `owners` recorded first
        (so no data is written that an erasure of an owner would miss). A shredded cipher
        when the key was destroyed. `conn`: in the caller's transaction."""
        if conn is None:
            async with self.pool.acquire() as own, own.transaction():
                return await self.for_writing(tenant_id, subject_id, owners, conn=own)
        owned = sorted({o for o in owners if o})
        if owned:
            await conn.execute(self._sql_own, tenant_id, subject_id, owned)
        wrapped = self.keyring.wrap(tenant_id, subject_id, self.keyring.new_data_key())
        stored: bytes | None = await conn.fetchval(self._sql_ensure, tenant_id, subject_id, wrapped)
        return self.keyring.cipher(tenant_id, subject_id, stored)

    async def for_writing_many(
        self, conn: PgConnection, subjects: Sequence[tuple[str, str, Iterable[str]]]
    ) -> list[SubjectCipherOrShredded]:
        """`for_writing` for many subjects at once, in the caller's transaction: two statements
        for all of them (owners first, then keys), a cipher per `(tenant_id, subject_id,
        owners)` in the same order (group commit of many messages' keys)."""
        if not subjects:
            return []
        owned = sorted({(t, o, s) for t, s, owners in subjects for o in owners if o})
        if owned:
            await conn.execute(
                self._sql_own_many,
                [t for t, _, _ in owned],
                [o for _, o, _ in owned],
                [s for _, _, s in owned],
            )
        wanted = sorted({(t, s) for t, s, _ in subjects})
        rows = await conn.fetch(
            self._sql_ensure_many,
            [t for t, _ in wanted],
            [s for _, s in wanted],
            [self.keyring.wrap(t, s, self.keyring.new_data_key()) for t, s in wanted],
        )
        stored = {(r["tenant_id"], r["subject_id"]): r["wrapped_key"] for r in rows}
        ciphers = {(t, s): self.keyring.cipher(t, s, stored[(t, s)]) for t, s in wanted}
        return [ciphers[(t, s)] for t, s, _ in subjects]

    async def for_reading(
        self, tenant_id: str, subject_ids: Sequence[str]
    ) -> dict[str, SubjectCipherOrShredded]:
        """A cipher per subject: a shredded one for a destroyed (or never created) key."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(self._sql_keys, tenant_id, list(set(subject_ids)))
        wrapped = {r["subject_id"]: r["wrapped_key"] for r in rows}
        return {
            s: self.keyring.cipher(tenant_id, s, wrapped.get(s)) for s in dict.fromkeys(subject_ids)
        }

    async def shred(self, conn: PgConnection, tenant_id: str, subject_ids: Sequence[str]) -> None:
        """Destroy the keys of `subject_ids` (in the caller's transaction; idempotent). A
        subject never used gets a destroyed key, so nothing is sealed for it later."""
        await conn.execute(self._sql_shred_subjects, tenant_id, sorted(set(subject_ids)))

    async def shred_owned(
        self, conn: PgConnection, tenant_id: str, owner_ids: Sequence[str]
    ) -> list[str]:
        """Destroy the keys of every subject of `owner_ids` (in the caller's transaction);
        returns those subjects (also the ones destroyed before: the call is idempotent)."""
        await conn.execute(self._sql_shred, tenant_id, list(owner_ids))
        rows = await conn.fetch(self._sql_owned, tenant_id, list(owner_ids))
        return [r["subject_id"] for r in rows]
