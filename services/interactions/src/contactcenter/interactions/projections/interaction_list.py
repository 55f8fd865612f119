"""The list read model (`interaction_list`, migrations/0001): ListInteractions and the earlier
contacts of a customer profile (first-contact resolution).

Fed by tailing this service's own event store (`read_all`), not by consuming Kafka:
- the source of truth is next door: no broker round trip, no CloudEvents decoding, no
  dependency on the broker to show the service's own writes (lag is a few milliseconds: the
  store's NOTIFY, or this process's own signal, wakes the tailer);
- exactly once by construction: the rows and the checkpoint (`consumer_positions`, the
  store's GlobalPosition) are written in ONE transaction, and `read_all` never skips an event
  committed late by a concurrent writer; rows also only move forward (version guard), so
  applying a batch twice (a second replica, a rebuild racing the tailer) changes nothing;
- rebuilt from zero by deleting the rows and the checkpoint (`reset`).
One replica tails at a time (a PostgreSQL advisory lock); the others wait as standbys.

Each row keeps the folded aggregate without its content (JSON), so folding the next events
needs no other read and a list page is rendered from the rows alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from contactcenter.eventstore import (
    STORE_SOURCE,
    Checkpoint,
    GlobalPosition,
    PgConnection,
    PostgresEventStore,
    RecordedEvent,
    TailPacer,
    load_global_position,
    reset_consumer,
    save_position,
)
from contactcenter.interactions.adapters.snapshot import dump_interaction, load_interaction
from contactcenter.interactions.application.handlers import fold
from contactcenter.interactions.application.signals import AppendSignals
from contactcenter.interactions.domain import (
    STREAM_CATEGORY,
    Channel,
    Interaction,
    InteractionState,
    PreviousContact,
)

_log = logging.getLogger(__name__)

CONSUMER: Final = "interaction-list"
_PREFIX: Final = f"{STREAM_CATEGORY}/"
#: Earlier contacts considered for FCR, newest first.
MAX_PREVIOUS_CONTACTS: Final = 100


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class _Row:
    """What folding the next events of one interaction needs from its row."""

    state: Interaction
    last_agent: str | None


def _handled(state: Interaction) -> bool:
    return state.answered_at is not None or state.state is InteractionState.COMPLETED


class InteractionListProjection:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        schema: str,
        *,
        signals: AppendSignals | None = None,
        batch_size: int = 1_000,
        poll_interval_s: float = 0.5,
        min_interval_s: float = 0.05,
        cache_size: int = 20_000,
    ) -> None:
        self._pool = pool
        self._store = store
        self._schema = schema
        self._signals = signals or AppendSignals()
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._min_interval_s = min_interval_s
        #: The rows as last written by this instance (the tailer is their only writer).
        self._cache: OrderedDict[tuple[str, str], _Row] = OrderedDict()
        self._cache_size = cache_size
        self.position = GlobalPosition.START
        self.applied = 0
        s = _quote(schema)
        self._sql_rows = (
            f"select l.tenant_id, l.interaction_id, l.version, l.agent_id, l.view::text as view "
            f"from {s}.interaction_list l join unnest($1::text[], $2::text[]) as k(t, i) "
            "on l.tenant_id = k.t and l.interaction_id = k.i"
        )
        # One statement for the whole batch (each interaction once): one round trip, and
        # PostgreSQL plans and starts one insert instead of one per row.
        self._sql_upsert = (
            f"insert into {s}.interaction_list as old (tenant_id, interaction_id, version, "
            "state, channel, queue_id, agent_id, customer_profile_id, intent, handled, "
            "created_at, updated_at, view) "
            "select v.tenant_id, v.interaction_id, v.version, v.state, v.channel, v.queue_id, "
            "v.agent_id, v.customer_profile_id, v.intent, v.handled, v.created_at, "
            "v.updated_at, v.view::json "
            "from unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], "
            "$6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::timestamptz[], "
            "$12::timestamptz[], $13::text[]) as v(tenant_id, interaction_id, version, state, "
            "channel, queue_id, agent_id, customer_profile_id, intent, handled, created_at, "
            "updated_at, view) "
            "on conflict (tenant_id, interaction_id) do update set version = excluded.version, "
            "state = excluded.state, channel = excluded.channel, queue_id = excluded.queue_id, "
            "agent_id = excluded.agent_id, customer_profile_id = excluded.customer_profile_id, "
            "intent = excluded.intent, handled = excluded.handled, "
            "created_at = excluded.created_at, updated_at = excluded.updated_at, "
            "view = excluded.view where old.version < excluded.version"
        )

    @contextlib.asynccontextmanager
    async def _leadership(self, stop: asyncio.Event) -> AsyncIterator[bool]:
        key = zlib.crc32(f"{CONSUMER}:{self._schema}".encode())
        async with self._pool.acquire() as conn:
            while not await conn.fetchval("select pg_try_advisory_lock($1)", key):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                if stop.is_set():
                    yield False
                    return
            try:
                yield True
            finally:
                await conn.execute("select pg_advisory_unlock($1)", key)

    async def run(self, stop: asyncio.Event) -> None:
        """Tail the store until `stop` is set (as the leader, or waiting to become it)."""
        async with self._leadership(stop) as leader:
            if not leader:
                return
            self.position = await load_global_position(self._pool, self._schema, CONSUMER)
            _log.info("interaction list resumes after %s", self.position)
            pacer = TailPacer(self._store, self._poll_interval_s)
            with self._signals.watch() as woken:
                while not stop.is_set():
                    woken.clear()
                    try:
                        applied = await self.catch_up_once()
                    except (OSError, asyncpg.PostgresError) as exc:
                        _log.warning("interaction list: %r; retrying", exc)
                        applied = 0
                    if applied == 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(
                                woken.wait(), await pacer.timeout_after(self.position)
                            )
                    elif applied < self._batch_size:
                        # Busy: let the next events gather into one batch (one transaction,
                        # each interaction's row written once) instead of one per append.
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self._min_interval_s)

    async def catch_up_once(self) -> int:
        """Apply the next batch after the checkpoint; returns how many events it had."""
        batch = await self._store.read_all(self.position, self._batch_size)
        if not batch:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            written = await self._apply(conn, batch)
            await save_position(
                conn, self._schema, CONSUMER, Checkpoint(STORE_SOURCE, batch[-1].global_position)
            )
        for key, entry in written.items():  # committed: what the rows now hold
            self._remember(key, entry)
        self.position = batch[-1].global_position
        self.applied += len(batch)
        return len(batch)

    def _remember(self, key: tuple[str, str], entry: _Row) -> None:
        if self._cache_size == 0:
            return
        self._cache[key] = entry
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def catch_up(self) -> int:
        """Apply everything readable now (tests, rebuilds)."""
        total = 0
        while applied := await self.catch_up_once():
            total += applied
        return total

    async def _apply(
        self, conn: PgConnection, batch: Sequence[RecordedEvent]
    ) -> dict[tuple[str, str], _Row]:
        """Write the rows of the interactions in `batch`; returns what was written."""
        streams: dict[tuple[str, str], list[RecordedEvent]] = {}
        for record in batch:
            if record.stream_id.startswith(_PREFIX):
                streams.setdefault(_key(record), []).append(record)
        known: dict[tuple[str, str], _Row] = {}
        missing: list[tuple[str, str]] = []
        for key in streams:
            cached = self._cache.get(key)
            if cached is not None:
                known[key] = cached
            else:
                missing.append(key)
        if missing:
            rows = await conn.fetch(
                self._sql_rows, [k[0] for k in missing], [k[1] for k in missing]
            )
            for r in rows:
                known[(r["tenant_id"], r["interaction_id"])] = _Row(
                    load_interaction(r["view"]), r["agent_id"]
                )
        written: dict[tuple[str, str], _Row] = {}
        values: list[tuple[Any, ...]] = []
        for key, records in streams.items():
            row = known.get(key)
            state = row.state if row is not None else None
            last_agent = row.last_agent if row is not None else None
            before = state.version if state is not None else 0
            for record in records:
                current = state.version if state is not None else 0
                if record.version <= current:
                    continue  # applied before
                if record.version != current + 1:
                    # A gap (rows reset without the checkpoint): fold the stream from the store.
                    history = await self._store.read_stream(record.stream_id)
                    state = fold(None, [r for r in history if r.version <= record.version])
                else:
                    state = fold(state, [record])
                if state is not None and state.agent_id:
                    last_agent = state.agent_id
            if state is None or state.version == before:
                continue
            if state.messages or state.notes or state.transcript:
                state = dataclasses.replace(state, messages=(), notes=(), transcript=())
            written[key] = _Row(state, last_agent)
            tenant_id, interaction_id = key
            values.append(
                (
                    tenant_id,
                    interaction_id,
                    state.version,
                    state.state.value,
                    state.channel.value,
                    state.queue_id,
                    last_agent,
                    state.customer_profile_id,
                    state.intent,
                    _handled(state),
                    state.created_at,
                    state.updated_at,
                    dump_interaction(state),
                )
            )
        if values:
            await conn.execute(
                self._sql_upsert, *(list(column) for column in zip(*values, strict=True))
            )
        return written

    async def reset(self) -> None:
        """Forget the read model and the checkpoint: the next catch-up rebuilds from zero."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(f"delete from {_quote(self._schema)}.interaction_list")
            await reset_consumer(conn, self._schema, CONSUMER)
        self._cache.clear()
        self.position = GlobalPosition.START


def _key(record: RecordedEvent) -> tuple[str, str]:
    # `interaction/<tenant>/<interaction id>`; the tenant never contains '/'.
    _, tenant_id, interaction_id = record.stream_id.split("/", 2)
    return tenant_id, interaction_id


# --- queries -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ListFilter:
    """Every given criterion must hold (states and channels: any of them)."""

    states: tuple[InteractionState, ...] = ()
    channels: tuple[Channel, ...] = ()
    queue_id: str | None = None
    agent_id: str | None = None
    customer_profile_id: str | None = None
    #: On the creation time, half-open [created_from, created_before).
    created_from: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: lists go newest first by (created_at, interaction_id)."""

    created_at: datetime
    interaction_id: str


class InteractionList:
    """Queries on the list read model (the `PreviousContacts` port, and ListInteractions)."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._table = f"{_quote(schema)}.interaction_list"
        self._merges = f"{_quote(schema)}.profile_merges"

    def _customer(self, profile: str) -> str:
        """SQL: the row's customer is `profile` ($n), the profile it was merged into, or any
        profile merged into that one (adapters/profiles.py keeps `profile_merges`)."""
        merges = self._merges
        winner = (
            f"coalesce((select m.target_profile_id from {merges} m "
            f"where m.tenant_id = $1 and m.profile_id = {profile}), {profile})"
        )
        return (
            f"customer_profile_id = any(array(select {winner} union all "
            f"select m.profile_id from {merges} m where m.tenant_id = $1 "
            f"and m.target_profile_id = {winner}))"
        )

    async def previous_contacts(
        self, tenant_id: str, profile_id: str, *, since: datetime, until: datetime
    ) -> list[PreviousContact]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "select interaction_id, created_at, handled, intent "
                f"from {self._table} where tenant_id = $1 and {self._customer('$2')} "
                "and created_at >= $3 and created_at < $4 "
                "order by created_at desc, interaction_id desc limit $5",
                tenant_id,
                profile_id,
                since,
                until,
                MAX_PREVIOUS_CONTACTS,
            )
        return [
            PreviousContact(
                interaction_id=r["interaction_id"],
                created_at=r["created_at"],
                handled=r["handled"],
                intent=r["intent"],
            )
            for r in rows
        ]

    async def search(
        self, tenant_id: str, where: ListFilter, *, after: Cursor | None, limit: int
    ) -> tuple[list[Interaction], Cursor | None]:
        """One page, newest first, and the cursor of the next page (None: the last page)."""
        conditions = ["tenant_id = $1"]
        args: list[Any] = [tenant_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if where.states:
            conditions.append(f"state = any({arg([s.value for s in where.states])}::text[])")
        if where.channels:
            conditions.append(f"channel = any({arg([c.value for c in where.channels])}::text[])")
        if where.queue_id:
            conditions.append(f"queue_id = {arg(where.queue_id)}")
        if where.agent_id:
            conditions.append(f"agent_id = {arg(where.agent_id)}")
        if where.customer_profile_id:
            conditions.append(self._customer(arg(where.customer_profile_id)))
        if where.created_from is not None:
            conditions.append(f"created_at >= {arg(where.created_from)}")
        if where.created_before is not None:
            conditions.append(f"created_at < {arg(where.created_before)}")
        if after is not None:
            conditions.append(
                f"(created_at, interaction_id) < ({arg(after.created_at)}, "
                f"{arg(after.interaction_id)})"
            )
        sql = (
            f"select view::text as view from {self._table} where {' and '.join(conditions)} "
            f"order by created_at desc, interaction_id desc limit {arg(limit + 1)}"
        )
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        states = [load_interaction(r["view"]) for r in rows[:limit]]
        more = len(rows) > limit
        cursor = (
            Cursor(states[-1].created_at, states[-1].interaction_id) if more and states else None
        )
        return states, cursor
