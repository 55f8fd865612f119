"""Exactly-once effects for consumers (projections, process managers) on at-least-once delivery.

A consumer writes its read model and records what it applied in ONE transaction
(`<schema>.consumer_applied`, `<schema>.consumer_positions`, from migrations/0002; the heads of
the streams it applied, `<schema>.consumer_stream_heads`, from 0004), so a batch
redelivered after a crash, or overlapping one already applied, changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from contactcenter.eventstore._pg import PgConnection, PgPool, connection, quote_ident
from contactcenter.eventstore.model import GlobalPosition

T = TypeVar("T")

#: The `source` under which a consumer of an event store (e.g. the outbox relay) keeps its
#: checkpoint by default.
STORE_SOURCE = "eventstore"

#: The `source` under which `prune_applied` records a consumer's pruning horizon (position:
#: milliseconds since the epoch).
APPLIED_HORIZON_SOURCE = "applied-horizon"

#: How long `prune_applied` keeps the ids of applied events by default: Apache Kafka's default
#: log retention, the age beyond which a redelivery cannot bring an event back.
DEFAULT_APPLIED_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a consumer got in one source: a Kafka offset (`topic:partition`) or a store's
    GlobalPosition."""

    source: str
    position: int | GlobalPosition


def _event_id_of(item: Any) -> UUID:
    event_id = item.event_id
    if not isinstance(event_id, UUID):
        raise TypeError(f"event_id must be a UUID, got {event_id!r}")
    return event_id


async def apply_once(
    target: PgPool | PgConnection,
    schema: str,
    consumer: str,
    items: Sequence[T],
    apply: Callable[[PgConnection, T], Awaitable[None]],
    *,
    event_id: Callable[[T], UUID] = _event_id_of,
    checkpoint: Checkpoint | None = None,
    occurred_at: Callable[[T], datetime] | None = None,
) -> int:
    """Apply each item not yet applied by `consumer`, in order; returns how many were applied.

    In one transaction: claims the items' event ids (`event_id(item)`, by default its
    `event_id` attribute, as on DomainEvent and RecordedEvent), calls `apply(conn, item)` for
    the ones not applied before (on the same connection, so the read model's writes commit or
    roll back with the claim), records `checkpoint` if given, and commits. An exception in
    `apply` rolls everything back and propagates: the batch can simply be redelivered.

    With `occurred_at`, an item that occurred before the consumer's pruning horizon (see
    `prune_applied`) counts as applied: its claim may have been pruned.
    """
    s = quote_ident(schema)
    ids = [event_id(item) for item in items]
    times = [occurred_at(item) for item in items] if occurred_at is not None else None
    async with connection(target) as conn, conn.transaction():
        # Claiming first (rather than checking, then inserting) makes a concurrent duplicate
        # batch of the same consumer wait here for ours, then skip what we applied. Claims
        # are taken in id order so that two overlapping batches cannot deadlock.
        if times is None:
            rows = await conn.fetch(
                f"insert into {s}.consumer_applied (consumer, event_id) "
                "select $1, id from unnest($2::uuid[]) as id order by id "
                "on conflict do nothing returning event_id",
                consumer,
                ids,
            )
        else:
            rows = await conn.fetch(
                f"insert into {s}.consumer_applied (consumer, event_id) "
                "select $1, x.id from unnest($2::uuid[], $3::timestamptz[]) as x(id, at) "
                "where x.at >= coalesce((select to_timestamp(position / 1000.0) from "
                f"{s}.consumer_positions where consumer = $1 and source = $4), '-infinity') "
                "order by x.id on conflict do nothing returning event_id",
                consumer,
                ids,
                times,
                APPLIED_HORIZON_SOURCE,
            )
        claimed = {r["event_id"] for r in rows}
        applied = 0
        for item, item_id in zip(items, ids, strict=True):
            if item_id in claimed:
                claimed.discard(item_id)  # a duplicate within the batch applies once
                await apply(conn, item)
                applied += 1
        if checkpoint is not None:
            await save_position(conn, schema, consumer, checkpoint)
    return applied


async def load_stream_heads(
    target: PgPool | PgConnection,
    schema: str,
    consumer: str,
    streams: Iterable[tuple[str, str]],
) -> dict[tuple[str, str], int]:
    """The last version `consumer` applied of each of `streams` (source, subject) it applied
    anything of."""
    keys = sorted(streams)
    if not keys:
        return {}
    s = quote_ident(schema)
    async with connection(target) as conn:
        rows = await conn.fetch(
            f"select h.source, h.subject, h.version from {s}.consumer_stream_heads h "
            "join unnest($2::text[], $3::text[]) as k(source, subject) "
            "on h.source = k.source and h.subject = k.subject where h.consumer = $1",
            consumer,
            [k[0] for k in keys],
            [k[1] for k in keys],
        )
    return {(r["source"], r["subject"]): r["version"] for r in rows}


async def save_stream_heads(
    target: PgPool | PgConnection,
    schema: str,
    consumer: str,
    heads: Mapping[tuple[str, str], int],
) -> dict[tuple[str, str], int]:
    """Record the streams' heads `consumer` moved; never moves one backwards. Call inside the
    transaction that applied the events. Returns the heads as stored (a stored one may be
    further on than the one given)."""
    if not heads:
        return {}
    s = quote_ident(schema)
    keys = sorted(heads)  # a fixed lock order: two batches cannot deadlock
    async with connection(target) as conn:
        rows = await conn.fetch(
            f"insert into {s}.consumer_stream_heads as old (consumer, source, subject, version) "
            "select $1, * from unnest($2::text[], $3::text[], $4::int8[]) "
            "on conflict (consumer, source, subject) do update "
            "set version = greatest(old.version, excluded.version) "
            "returning source, subject, version",
            consumer,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [heads[k] for k in keys],
        )
    return {(r["source"], r["subject"]): r["version"] for r in rows}


async def save_position(
    target: PgPool | PgConnection, schema: str, consumer: str, checkpoint: Checkpoint
) -> None:
    """Record how far `consumer` got in `checkpoint.source`; never moves it backwards (a
    redelivered older batch must not rewind). Call inside the consumer's own transaction."""
    s = quote_ident(schema)
    position = checkpoint.position
    xid, pos = (
        (position.transaction_id, position.position)
        if isinstance(position, GlobalPosition)
        else (None, position)
    )
    async with connection(target) as conn:
        await conn.execute(
            f"insert into {s}.consumer_positions as old "
            "(consumer, source, transaction_id, position) values ($1, $2, $3::xid8, $4) "
            "on conflict (consumer, source) do update "
            "set transaction_id = excluded.transaction_id, position = excluded.position, "
            "updated_at = now() "
            "where (coalesce(old.transaction_id, '0'::xid8), old.position) "
            "< (coalesce(excluded.transaction_id, '0'::xid8), excluded.position)",
            consumer,
            checkpoint.source,
            xid,
            pos,
        )


async def load_position(
    target: PgPool | PgConnection, schema: str, consumer: str, source: str
) -> int | None:
    """The offset recorded for a Kafka-style source, or None."""
    s = quote_ident(schema)
    async with connection(target) as conn:
        position: int | None = await conn.fetchval(
            f"select position from {s}.consumer_positions where consumer = $1 and source = $2",
            consumer,
            source,
        )
    return position


async def load_global_position(
    target: PgPool | PgConnection, schema: str, consumer: str, source: str = STORE_SOURCE
) -> GlobalPosition:
    """The event-store checkpoint recorded for `consumer`, or GlobalPosition.START."""
    s = quote_ident(schema)
    async with connection(target) as conn:
        row = await conn.fetchrow(
            f"select transaction_id, position from {s}.consumer_positions "
            "where consumer = $1 and source = $2",
            consumer,
            source,
        )
    if row is None:
        return GlobalPosition.START
    return GlobalPosition(row["transaction_id"] or 0, row["position"])


async def prune_applied(
    target: PgPool | PgConnection,
    schema: str,
    *,
    retention: timedelta = DEFAULT_APPLIED_RETENTION,
    batch: int = 10_000,
) -> int:
    """Delete the ids of events applied longer than `retention` ago (by every consumer of the
    schema); returns how many were deleted.

    Safe as long as nothing older than `retention` is redelivered unapplied: each consumer's
    horizon (now - retention) is recorded in the same transaction, and `apply_once` with
    `occurred_at` takes an event that occurred before it as applied (an event that occurred
    before the horizon and was still not applied at pruning time would be a consumer lagging
    by more than the retention, which Kafka's own retention would not survive either).
    Deletes in batches of `batch` rows, each its own short transaction.
    """
    s = quote_ident(schema)
    deleted = 0
    async with connection(target) as conn:
        horizon: datetime = await conn.fetchval("select now() - $1::interval", retention)
        consumers = await conn.fetch(
            f"select distinct consumer from {s}.consumer_applied where applied_at < $1", horizon
        )
        for row in consumers:
            consumer = row["consumer"]
            while True:
                async with conn.transaction():
                    await conn.execute(
                        f"insert into {s}.consumer_positions as old (consumer, source, position) "
                        "values ($1, $2, (extract(epoch from $3::timestamptz) * 1000)::bigint) "
                        "on conflict (consumer, source) do update "
                        "set position = excluded.position, updated_at = now() "
                        "where old.position < excluded.position",
                        consumer,
                        APPLIED_HORIZON_SOURCE,
                        horizon,
                    )
                    status = await conn.execute(
                        f"delete from {s}.consumer_applied where ctid = any(array("
                        f"select ctid from {s}.consumer_applied "
                        "where consumer = $1 and applied_at < $2 limit $3))",
                        consumer,
                        horizon,
                        batch,
                    )
                count = int(status.split()[-1])
                deleted += count
                if count < batch:
                    break
    return deleted


async def reset_position(
    target: PgPool | PgConnection, schema: str, consumer: str, source: str = STORE_SOURCE
) -> None:
    """Forget how far `consumer` got in `source` (`save_position` never moves backwards): for
    a consumer that must start that source again, e.g. the outbox relay after the broker lost
    what it had published."""
    s = quote_ident(schema)
    async with connection(target) as conn:
        await conn.execute(
            f"delete from {s}.consumer_positions where consumer = $1 and source = $2",
            consumer,
            source,
        )


async def reset_consumer(target: PgPool | PgConnection, schema: str, consumer: str) -> None:
    """Forget what `consumer` applied and where it was: for rebuilding a read model from zero
    (truncate the read model in the same transaction)."""
    s = quote_ident(schema)
    async with connection(target) as conn, conn.transaction():
        await conn.execute(f"delete from {s}.consumer_applied where consumer = $1", consumer)
        await conn.execute(f"delete from {s}.consumer_positions where consumer = $1", consumer)
        await conn.execute(f"delete from {s}.consumer_stream_heads where consumer = $1", consumer)
