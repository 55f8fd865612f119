"""The service's own tables (migrations/0001): identity index, redirects, keys, views, audit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contactcenter.eventstore import PgConnection, PgPool
from contactcenter.privacy import KeyRingSecrets, KeyTable
from contactcenter.profiles.adapters.identity_cache import IdentityCache
from contactcenter.profiles.domain import (
    AttributeDefinition,
    AttributeSchema,
    IdentityKind,
    ProfileStatus,
    TenantSettings,
)


def _q(schema: str) -> str:
    return '"' + schema.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class IdentityRow:
    profile_id: str
    #: Where lookups land: the profile it redirects to, else profile_id.
    effective_id: str
    origin: str
    claimed_by_request: str | None
    confirmed: bool


@dataclass(frozen=True, slots=True)
class HistoryRow:
    interaction_id: str
    profile_id: str
    channel: str | None
    direction: str | None
    state: str
    created_at: datetime
    ended_at: datetime | None
    queue_id: str | None
    agent_id: str | None
    disposition_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry of the trail as stored."""

    entry_id: int
    profile_id: str
    actor: str
    roles: tuple[str, ...]
    action: str
    purpose: str
    request_id: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    tenant_id: str
    profile_id: str
    actor: str
    roles: Sequence[str]
    action: str
    purpose: str
    request_id: str | None = None


class Tables:
    def __init__(self, pool: PgPool, schema: str, *, identity_cache_entries: int = 100_000) -> None:
        self.pool = pool
        s = _q(schema)
        self._s = s
        #: The profile keys (for master key rotation) and the key ring's stored secrets.
        self.key_table = KeyTable(schema, "profile_keys", "profile_id")
        self.secrets = KeyRingSecrets(pool, schema)
        #: Confirmed identity lookups, kept while the process listens for their changes.
        self.identity_cache = IdentityCache(schema, max(1, identity_cache_entries))
        self._sql_find = (
            "select i.profile_id, coalesce(r.target_profile_id, i.profile_id) as effective_id, "
            "i.origin, i.claimed_by_request, i.confirmed "
            f"from {s}.identities i left join {s}.redirects r "
            "on r.tenant_id = i.tenant_id and r.profile_id = i.profile_id "
            "where i.tenant_id = $1 and i.kind = $2 and i.ref = $3"
        )
        self._sql_claim = (
            f"insert into {s}.identities "
            "(tenant_id, kind, ref, profile_id, origin, claimed_by_request) "
            "values ($1, $2, $3, $4, $5, $6) on conflict do nothing returning profile_id"
        )

    # --- identity index -------------------------------------------------------------------

    async def find_identity(
        self, tenant_id: str, kind: IdentityKind, ref: str
    ) -> IdentityRow | None:
        # From the cache (see identity_cache.py), else one indexed query (primary key, plus
        # the redirect's primary key): the whole read of a resolve of a known identity.
        cache = self.identity_cache
        found = cache.get(tenant_id, kind.value, ref)
        if found is not None:
            return found
        generation = cache.generation
        row = await self.pool.fetchrow(self._sql_find, tenant_id, kind.value, ref)
        if row is None:
            return None
        found = IdentityRow(*row)
        cache.put(tenant_id, kind.value, ref, found, generation)
        return found

    @asynccontextmanager
    async def _moving_identities(self, tenant_id: str) -> AsyncIterator[None]:
        """Around a change that may move identities of the tenant: once it is over (committed
        or not) this process drops the tenant's cached lookups at once; other processes do when
        the trigger's notification reaches them (migration 0005)."""
        try:
            yield
        finally:
            self.identity_cache.invalidate(tenant_id)

    async def claim_identity(
        self,
        tenant_id: str,
        kind: IdentityKind,
        ref: str,
        profile_id: str,
        origin: str,
        request_id: str | None,
    ) -> bool:
        """True when this call took the identity for `profile_id`. A concurrent claim of the same
        identity waits for the other's commit, then gets False (the unique key decides)."""
        async with self.pool.acquire() as conn:
            got = await conn.fetchval(
                self._sql_claim, tenant_id, kind.value, ref, profile_id, origin, request_id
            )
        return got is not None

    async def confirm_identities(self, tenant_id: str, refs: Sequence[tuple[str, str]]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"update {self._s}.identities set confirmed = true "
                "where tenant_id = $1 and (kind, ref) in "
                "(select * from unnest($2::text[], $3::text[])) and not confirmed",
                tenant_id,
                [k for k, _ in refs],
                [r for _, r in refs],
            )

    async def release_claims(
        self, tenant_id: str, profile_id: str, refs: Sequence[tuple[str, str]]
    ) -> None:
        """Drop unconfirmed claims of a command that failed before its events were stored."""
        async with self._moving_identities(tenant_id), self.pool.acquire() as conn:
            await conn.execute(
                f"delete from {self._s}.identities where tenant_id = $1 and profile_id = $2 "
                "and not confirmed and (kind, ref) in "
                "(select * from unnest($3::text[], $4::text[]))",
                tenant_id,
                profile_id,
                [k for k, _ in refs],
                [r for _, r in refs],
            )

    async def remove_identities(
        self, tenant_id: str, profile_id: str, refs: Sequence[tuple[str, str]]
    ) -> None:
        async with self._moving_identities(tenant_id), self.pool.acquire() as conn:
            await conn.execute(
                f"delete from {self._s}.identities where tenant_id = $1 and profile_id = $2 "
                "and (kind, ref) in (select * from unnest($3::text[], $4::text[]))",
                tenant_id,
                profile_id,
                [k for k, _ in refs],
                [r for _, r in refs],
            )

    # --- keys -----------------------------------------------------------------------------

    async def ensure_key(self, tenant_id: str, profile_id: str, wrapped: bytes) -> bytes:
        """The profile's wrapped key: `wrapped` if it had none, else the one it has (so two
        concurrent creators encrypt with the same key)."""
        async with self.pool.acquire() as conn:
            key: bytes = await conn.fetchval(
                f"insert into {self._s}.profile_keys (tenant_id, profile_id, wrapped_key) "
                "values ($1, $2, $3) on conflict (tenant_id, profile_id) "
                "do update set tenant_id = excluded.tenant_id returning wrapped_key",
                tenant_id,
                profile_id,
                wrapped,
            )
        return key

    async def keys(self, tenant_id: str, profile_ids: Sequence[str]) -> dict[str, bytes]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"select profile_id, wrapped_key from {self._s}.profile_keys "
                "where tenant_id = $1 and profile_id = any($2::text[])",
                tenant_id,
                list(profile_ids),
            )
        return {r["profile_id"]: r["wrapped_key"] for r in rows}

    # --- redirects ------------------------------------------------------------------------

    async def redirect_of(self, tenant_id: str, profile_id: str) -> str | None:
        async with self.pool.acquire() as conn:
            target: str | None = await conn.fetchval(
                f"select target_profile_id from {self._s}.redirects "
                "where tenant_id = $1 and profile_id = $2",
                tenant_id,
                profile_id,
            )
        return target

    async def redirected_to(self, tenant_id: str, profile_id: str) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"select profile_id from {self._s}.redirects "
                "where tenant_id = $1 and target_profile_id = $2 order by profile_id",
                tenant_id,
                profile_id,
            )
        return [r["profile_id"] for r in rows]

    async def record_merge(
        self, tenant_id: str, source_id: str, target_id: str, merge_id: str
    ) -> None:
        """The source and everything that redirected to it now redirect to the target."""
        async with (
            self._moving_identities(tenant_id),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await conn.execute(
                f"update {self._s}.redirects set target_profile_id = $3 "
                "where tenant_id = $1 and target_profile_id = $2",
                tenant_id,
                source_id,
                target_id,
            )
            await conn.execute(
                f"insert into {self._s}.redirects "
                "(tenant_id, profile_id, target_profile_id, merge_id) values ($1, $2, $3, $4) "
                "on conflict (tenant_id, profile_id) do update "
                "set target_profile_id = excluded.target_profile_id, merge_id = excluded.merge_id",
                tenant_id,
                source_id,
                target_id,
                merge_id,
            )
            await self._set_status(conn, tenant_id, source_id, ProfileStatus.MERGED)

    async def record_unmerge(
        self, tenant_id: str, source_id: str, target_id: str, redirected: Sequence[str]
    ) -> None:
        async with (
            self._moving_identities(tenant_id),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await conn.execute(
                f"delete from {self._s}.redirects where tenant_id = $1 and profile_id = $2",
                tenant_id,
                source_id,
            )
            await conn.execute(
                f"update {self._s}.redirects set target_profile_id = $2 "
                "where tenant_id = $1 and profile_id = any($3::text[]) "
                "and target_profile_id = $4",
                tenant_id,
                source_id,
                list(redirected),
                target_id,
            )
            await self._set_status(conn, tenant_id, source_id, ProfileStatus.ACTIVE)

    async def _set_status(
        self, conn: PgConnection, tenant_id: str, profile_id: str, status: ProfileStatus
    ) -> None:
        await conn.execute(
            f"update {self._s}.profile_view set status = $3, updated_at = now() "
            "where tenant_id = $1 and profile_id = $2",
            tenant_id,
            profile_id,
            status.value,
        )

    # --- profile view ---------------------------------------------------------------------

    async def save_view(
        self,
        tenant_id: str,
        profile_id: str,
        status: ProfileStatus,
        display_name: str | None,
        version: int,
    ) -> None:
        """Upsert; an older version never overwrites a newer one."""
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"insert into {self._s}.profile_view as v "
                "(tenant_id, profile_id, status, display_name, name_key, version) "
                "values ($1, $2, $3, $4, lower($4), $5) on conflict (tenant_id, profile_id) "
                "do update set status = excluded.status, display_name = excluded.display_name, "
                "name_key = excluded.name_key, version = excluded.version, updated_at = now() "
                "where v.version < excluded.version",
                tenant_id,
                profile_id,
                status.value,
                display_name,
                version,
            )

    async def search_names(
        self, tenant_id: str, prefix: str, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str]]:
        """(name_key, profile_id) of active profiles whose name starts with `prefix`."""
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        key, pid = after or ("", "")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"select name_key, profile_id from {self._s}.profile_view "
                "where tenant_id = $1 and name_key like $2 and status = 'active' "
                "and (name_key, profile_id) > ($3, $4) order by name_key, profile_id limit $5",
                tenant_id,
                escaped + "%",
                key,
                pid,
                limit,
            )
        return [(r["name_key"], r["profile_id"]) for r in rows]

    # --- erasure --------------------------------------------------------------------------

    async def shred(self, tenant_id: str, profile_ids: Sequence[str], erasure_id: str) -> None:
        """Destroy the keys and purge every read model of `profile_ids`, in one transaction."""
        ids = list(profile_ids)
        s = self._s
        async with (
            self._moving_identities(tenant_id),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            for table in ("profile_keys", "identities", "profile_view"):
                await conn.execute(
                    f"delete from {s}.{table} where tenant_id = $1 and profile_id = any($2)",
                    tenant_id,
                    ids,
                )
            await conn.execute(
                f"delete from {s}.redirects where tenant_id = $1 "
                "and (profile_id = any($2) or target_profile_id = any($2))",
                tenant_id,
                ids,
            )
            await conn.execute(
                f"delete from {s}.history where tenant_id = $1 and profile_id = any($2)",
                tenant_id,
                ids,
            )
            await conn.execute(
                f"insert into {s}.erasures (tenant_id, profile_id, erasure_id) "
                "select $1, id, $3 from unnest($2::text[]) as id on conflict do nothing",
                tenant_id,
                ids,
                erasure_id,
            )

    # --- history --------------------------------------------------------------------------

    async def history(
        self,
        tenant_id: str,
        profile_ids: Sequence[str],
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[HistoryRow]:
        cursor_sql = "and (created_at, interaction_id) < ($3, $4) " if after else ""
        args: list[Any] = [tenant_id, list(profile_ids)]
        if after:
            args += [after[0], after[1]]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "select interaction_id, profile_id, channel, direction, state, created_at, "
                "ended_at, queue_id, agent_id, disposition_codes "
                f"from {self._s}.history where tenant_id = $1 and profile_id = any($2) "
                f"{cursor_sql}order by created_at desc, interaction_id desc "
                f"limit {int(limit)}",
                *args,
            )
        return [
            HistoryRow(**{**dict(r), "disposition_codes": tuple(r["disposition_codes"])})
            for r in rows
        ]

    async def last_contacts(self, tenant_id: str, profile_ids: Sequence[str]) -> list[HistoryRow]:
        """The latest interaction per channel (and its agent)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "select distinct on (channel) interaction_id, profile_id, channel, direction, "
                "state, created_at, ended_at, queue_id, agent_id, disposition_codes "
                f"from {self._s}.history where tenant_id = $1 and profile_id = any($2) "
                "order by channel, created_at desc, interaction_id desc",
                tenant_id,
                list(profile_ids),
            )
        return [
            HistoryRow(**{**dict(r), "disposition_codes": tuple(r["disposition_codes"])})
            for r in rows
        ]

    # --- audit ----------------------------------------------------------------------------

    async def audit(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        async with self.pool.acquire() as conn:
            await conn.executemany(
                f"insert into {self._s}.access_audit "
                "(tenant_id, profile_id, actor, roles, action, purpose, request_id) "
                "values ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (
                        e.tenant_id,
                        e.profile_id,
                        e.actor,
                        list(e.roles),
                        e.action,
                        e.purpose,
                        e.request_id,
                    )
                    for e in entries
                ],
            )

    async def list_audit(
        self,
        tenant_id: str,
        *,
        profile_id: str | None,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[AuditRecord]:
        """The tenant's trail, newest first, filtered; `before` is the (time, id) cursor."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "select id, profile_id, actor, roles, action, purpose, request_id, occurred_at "
                f"from {self._s}.access_audit where tenant_id = $1 "
                "and ($2::text is null or profile_id = $2) and ($3::text is null or actor = $3) "
                "and ($4::timestamptz is null or occurred_at >= $4) "
                "and ($5::timestamptz is null or occurred_at < $5) "
                "and ($6::timestamptz is null or (occurred_at, id) < ($6, $7::bigint)) "
                "order by occurred_at desc, id desc limit $8",
                tenant_id,
                profile_id,
                actor,
                since,
                until,
                before[0] if before else None,
                before[1] if before else 0,
                limit,
            )
        return [
            AuditRecord(
                entry_id=r["id"],
                profile_id=r["profile_id"],
                actor=r["actor"],
                roles=tuple(r["roles"]),
                action=r["action"],
                purpose=r["purpose"],
                request_id=r["request_id"],
                occurred_at=r["occurred_at"],
            )
            for r in rows
        ]

    # --- tenant settings ------------------------------------------------------------------

    async def tenant_settings(self, tenant_id: str) -> TenantSettings:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "select default_region, attributes::text as attributes, unmerge_window_days, "
                f"version from {self._s}.tenant_settings where tenant_id = $1",
                tenant_id,
            )
        if row is None:
            return TenantSettings()
        return TenantSettings(
            default_region=row["default_region"],
            schema=AttributeSchema(
                attributes=tuple(
                    AttributeDefinition.model_validate(a) for a in json.loads(row["attributes"])
                )
            ),
            unmerge_window_days=row["unmerge_window_days"],
            version=row["version"],
        )

    async def save_tenant_settings(self, tenant_id: str, settings: TenantSettings) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"insert into {self._s}.tenant_settings as t "
                "(tenant_id, default_region, attributes, unmerge_window_days, version) "
                "values ($1, $2, $3::text::jsonb, $4, $5) on conflict (tenant_id) do update "
                "set default_region = excluded.default_region, attributes = excluded.attributes, "
                "unmerge_window_days = excluded.unmerge_window_days, version = excluded.version "
                "where t.version < excluded.version",
                tenant_id,
                settings.default_region,
                json.dumps([a.model_dump(mode="json") for a in settings.schema.attributes]),
                settings.unmerge_window_days,
                settings.version,
            )

    @asynccontextmanager
    async def tenant_lock(self, tenant_id: str) -> AsyncIterator[None]:
        """Serialises merges, unmerges and erasures of one tenant across replicas (two merges
        in opposite directions must not both succeed)."""
        async with self.pool.acquire() as conn:
            await conn.execute("select pg_advisory_lock(hashtext($1))", f"profiles:{tenant_id}")
            try:
                yield
            finally:
                # The pool's cheap release does not unlock advisory locks: do it here.
                await conn.execute(
                    "select pg_advisory_unlock(hashtext($1))", f"profiles:{tenant_id}"
                )
