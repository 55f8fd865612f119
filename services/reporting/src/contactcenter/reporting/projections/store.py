"""Rows of the read models: load a ReportingState from them, write what changed, dump all."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from contactcenter.eventstore import PgConnection
from contactcenter.reporting.domain.metrics import ALL_FIELDS, COUNTER_FIELDS, Counters
from contactcenter.reporting.domain.state import (
    BucketKey,
    EntityKey,
    ReportingState,
    merge_delta,
)

ENTITIES: Final = "rm_entities"
BUCKETS: Final = "rm_buckets"
BUCKET_COLUMNS: Final = ("tenant_id", "queue_id", "channel", "minutes", "start_ms", *ALL_FIELDS)
_TYPES: Final = (
    ["text", "text", "text", "int2", "int8"]
    + ["int8"] * (len(ALL_FIELDS) - 2)
    + [
        "int4",
        "int4",
    ]
)


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


async def load_state(conn: PgConnection, schema: str) -> ReportingState:
    s = quote(schema)
    state = ReportingState()
    rows = await conn.fetch(
        f"select tenant_id, kind, key, data::text as data from {s}.{ENTITIES} "
        "order by tenant_id, (kind = 'tenant') desc, kind, key"
    )
    for r in rows:
        state.tenant(r["tenant_id"]).load_entity(r["kind"], r["key"], json.loads(r["data"]))
    # Memory holds today's 15-minute buckets and the minute ones: a range of start times (the
    # history stays in PostgreSQL).
    floors = [min(t.history_floor, t.minute_floor) for t in state.tenants.values()]
    cols = ", ".join(BUCKET_COLUMNS)
    for r in await conn.fetch(
        f"select {cols} from {s}.{BUCKETS} where start_ms >= $1", min(floors, default=0)
    ):
        key = (r["queue_id"], r["channel"], r["minutes"], r["start_ms"])
        state.tenant(r["tenant_id"]).load_bucket(key, Counters.from_row(tuple(r)[5:]))
    for t in state.tenants.values():
        t.drain()
        t.drain_changes()
    return state


def entity_records(state: ReportingState) -> list[tuple[str, str, str, str]]:
    out = []
    for tenant_id, t in state.tenants.items():
        for kind, key in t.entity_keys():
            d = t.entity_json(kind, key)
            if d is not None:
                out.append((tenant_id, kind, key, _dumps(d)))
    return out


def bucket_records(state: ReportingState) -> list[tuple[Any, ...]]:
    return [
        (tenant_id, *key, *c.to_row())
        for tenant_id, t in state.tenants.items()
        for key, c in t.buckets.items()
    ]


def history_records(state: ReportingState) -> list[tuple[Any, ...]]:
    """The buckets that left memory, with their late deltas added, as rows (for a state folded
    from zero: nothing of them is stored yet); drains them."""
    out = []
    for tenant_id, t in state.tenants.items():
        evicted, late = t.drain_history()
        for key, delta in late.items():
            if key in evicted:
                merge_delta(evicted[key], delta)
            else:
                evicted[key] = delta
        out += [(tenant_id, *key, *c.to_row()) for key, c in evicted.items()]
    return out


async def write_changes(
    conn: PgConnection,
    schema: str,
    state: ReportingState,
    changes: Iterable[tuple[str, set[EntityKey], set[BucketKey]]],
    *,
    suffix: str = "",
) -> None:
    """Upsert the changed rows and delete the gone ones (inside the caller's transaction)."""
    s = quote(schema)
    entities_table, buckets_table = f"{ENTITIES}{suffix}", f"{BUCKETS}{suffix}"
    upserts: list[tuple[str, str, str, str]] = []
    deletes: list[tuple[str, str, str]] = []
    bucket_upserts: list[tuple[Any, ...]] = []
    bucket_deletes: list[tuple[Any, ...]] = []
    bucket_deltas: list[tuple[Any, ...]] = []
    for tenant_id, entities, buckets in changes:
        t = state.tenants[tenant_id]
        evicted, late = t.drain_history()
        bucket_upserts += [(tenant_id, *key, *c.to_row()) for key, c in evicted.items()]
        bucket_deltas += [(tenant_id, *key, *c.to_row()) for key, c in late.items()]
        for kind, key in entities:
            d = t.entity_json(kind, key)
            if d is None:
                deletes.append((tenant_id, kind, key))
            else:
                upserts.append((tenant_id, kind, key, _dumps(d)))
        for bkey in buckets:
            c = t.buckets.get(bkey)
            if c is None:
                bucket_deletes.append((tenant_id, *bkey))
            else:
                bucket_upserts.append((tenant_id, *bkey, *c.to_row()))
    if upserts:
        await conn.execute(
            f"insert into {s}.{entities_table} (tenant_id, kind, key, data) "
            "select t, k, y, d::jsonb from unnest($1::text[], $2::text[], $3::text[], $4::text[])"
            " as u(t, k, y, d) on conflict (tenant_id, kind, key) do update "
            "set data = excluded.data",
            *zip(*upserts, strict=True),
        )
    if deletes:
        await conn.execute(
            f"delete from {s}.{entities_table} e using unnest($1::text[], $2::text[], $3::text[]) "
            "as u(t, k, y) where e.tenant_id = u.t and e.kind = u.k and e.key = u.y",
            *zip(*deletes, strict=True),
        )
    if bucket_upserts:
        n = len(BUCKET_COLUMNS)
        args = ", ".join(f"${i + 1}::{_TYPES[i]}[]" for i in range(n))
        updates = ", ".join(f"{c} = excluded.{c}" for c in ALL_FIELDS)
        await conn.execute(
            f"insert into {s}.{buckets_table} ({', '.join(BUCKET_COLUMNS)}) "
            f"select * from unnest({args}) "
            "on conflict (tenant_id, minutes, start_ms, queue_id, channel) "
            f"do update set {updates}",
            *zip(*bucket_upserts, strict=True),
        )
    if bucket_deltas:  # after the upserts: a delta may add to a row written just above
        n = len(BUCKET_COLUMNS)
        args = ", ".join(f"${i + 1}::{_TYPES[i]}[]" for i in range(n))
        updates = ", ".join(
            f"{c} = b.{c} + excluded.{c}" if c in COUNTER_FIELDS else f"{c} = excluded.{c}"
            for c in ALL_FIELDS
        )
        await conn.execute(
            f"insert into {s}.{buckets_table} as b ({', '.join(BUCKET_COLUMNS)}) "
            f"select * from unnest({args}) "
            "on conflict (tenant_id, minutes, start_ms, queue_id, channel) "
            f"do update set {updates}",
            *zip(*bucket_deltas, strict=True),
        )
    if bucket_deletes:
        await conn.execute(
            f"delete from {s}.{buckets_table} b using unnest($1::text[], $2::text[], $3::text[], "
            "$4::int2[], $5::int8[]) as u(t, q, c, m, st) where b.tenant_id = u.t and "
            "b.queue_id = u.q and b.channel = u.c and b.minutes = u.m and b.start_ms = u.st",
            *zip(*bucket_deletes, strict=True),
        )


async def copy_state(conn: PgConnection, schema: str, state: ReportingState, suffix: str) -> None:
    """Bulk-write the whole state, folded from zero, into `rm_entities<suffix>` /
    `rm_buckets<suffix>` (COPY): memory's buckets and those that left it."""
    await conn.copy_records_to_table(
        f"{ENTITIES}{suffix}",
        schema_name=schema,
        records=entity_records(state),
        columns=["tenant_id", "kind", "key", "data"],
    )
    await conn.copy_records_to_table(
        f"{BUCKETS}{suffix}",
        schema_name=schema,
        records=bucket_records(state) + history_records(state),
        columns=list(BUCKET_COLUMNS),
    )


async def dump_tables(
    conn: PgConnection, schema: str, tenant_id: str | None = None
) -> tuple[list[Any], list[Any]]:
    """Both read models in a canonical order (for comparing a rebuild with the live result),
    of one tenant when `tenant_id` is given (others may go on changing meanwhile)."""
    s = quote(schema)
    where = "where $1::text is null or tenant_id = $1"
    entities = await conn.fetch(
        f"select tenant_id, kind, key, data from {s}.{ENTITIES} {where} order by 1, 2, 3",
        tenant_id,
    )
    buckets = await conn.fetch(
        f"select * from {s}.{BUCKETS} {where} order by 1, 2, 3, 4, 5", tenant_id
    )
    return [tuple(r) for r in entities], [tuple(r) for r in buckets]
