"""The event store in one service's PostgreSQL schema (tables from migrations/0001)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg

from contactcenter.contracts.errors import AlreadyExists, ConcurrencyConflict
from contactcenter.contracts.events import DomainEvent
from contactcenter.eventstore._pg import (
    PG_OUTAGE_ERRORS,
    PgConnection,
    PgPool,
    notify_channel,
    quote_ident,
)
from contactcenter.eventstore.model import (
    ANY,
    AppendResult,
    GlobalPosition,
    RecordedEvent,
    Snapshot,
    check_append,
    check_fingerprint,
    from_json,
    request_fingerprint,
    to_json,
)
from contactcenter.eventstore.store import Wakeup
from contactcenter.eventstore.tracing import traced_append

_log = logging.getLogger(__name__)

#: The LISTEN connection: how often it is checked, and the backoff to listen again after a loss.
LISTEN_CHECK_S: Final = 0.5
LISTEN_RETRY_MIN_S: Final = 0.1
LISTEN_RETRY_MAX_S: Final = 5.0

#: Appends with expected_version=ANY retry this often when another writer took their version.
ANY_RETRIES: Final = 50

#: Group commit: appends per statement, and statements in flight at once.
GROUP_MAX_APPENDS: Final = 64
GROUP_MAX_IN_FLIGHT: Final = 2

#: Told of each append committed through a store instance, right after its commit, with its
#: events (their place in the global order, `position` and `transaction_id`, is not known yet:
#: both are 0), or with None for appends committed in a caller's transaction (`append_in`),
#: whose events the store does not hold.
CommitWatcher = Callable[[Sequence[RecordedEvent] | None], None]

_COLUMNS = (
    "position, transaction_id, stream_id, version, event_id, event_type, tenant_id, "
    "occurred_at, recorded_at, correlation_id, causation_id, data::text as data, "
    "metadata::text as metadata"
)


class PostgresEventStore:
    """`EventStore` on the tables of `schema`; every statement names the schema explicitly.

    `notify=True` sends a NOTIFY on the schema's channel (`notify_channel(schema)`) after each
    append, so tailing readers can `listener()` instead of busy-polling.

    `group_commit=True`: appends of concurrent callers (to different streams, with different
    request ids) that queue up while earlier ones are in flight go to PostgreSQL together as
    ONE statement (one round trip, one transaction, one WAL flush), at most
    `GROUP_MAX_IN_FLIGHT` statements at a time. Each append keeps its own outcome (appended,
    replayed, `ConcurrencyConflict`, `IdempotencyKeyReused`), exactly as alone; when the
    shared statement fails as a whole (a concurrent writer of another process won a race on
    one of its streams or requests), every append of it is run again alone, which is what
    decides it. Nothing is added to an append's latency: a lone append goes at once.
    """

    def __init__(
        self,
        pool: PgPool,
        schema: str,
        *,
        notify: bool = True,
        group_commit: bool = False,
        _hold_transaction: Callable[[PgConnection], Awaitable[None]] | None = None,
    ) -> None:
        """`_hold_transaction` is for tests only: the append then runs in an explicit
        transaction and awaits it after the inserts, before the commit."""
        self._pool = pool
        self._hold_transaction = _hold_transaction
        self.schema = schema
        self.channel = notify_channel(schema)
        self._notify = notify
        self._notify_pending = False
        self._notifier: asyncio.Task[None] | None = None
        # Listeners in this process (the service's own relay) are woken directly: the NOTIFY
        # round trip through the server is for other processes (replicas, tools).
        self._local_listeners: set[Wakeup] = set()
        self._commit_watchers: list[CommitWatcher] = []
        self._group_commit = group_commit and _hold_transaction is None
        self._queue: list[tuple[_Append, asyncio.Future[AppendResult | None]]] = []
        self._flushers: set[asyncio.Task[None]] = set()
        #: Streams and requests of the statements in flight (an append waits for them).
        self._busy_streams: set[str] = set()
        self._busy_requests: set[tuple[str, str]] = set()
        #: Shared statements sent, and the appends they carried (group commit's figures).
        self.group_statements = 0
        self.group_appends = 0
        s = quote_ident(schema)
        # The whole append is ONE statement, so it runs as its own transaction in one round
        # trip (round trips, not SQL, bound the throughput of 100 writers on 2 cores). It
        # reads the request record and the stream version, and inserts the events and the
        # request record only when no request was recorded and the version is the expected
        # one ($4 < 0: ANY). Python repeats the same decision on the returned row.
        # Per-stream order in read_all relies on this: the stream version is read from the
        # statement's snapshot, taken before the transaction gets its xid (at its first
        # insert), so the writer of that version committed with a smaller xid.
        # A concurrent writer of the same version (or request) makes an insert wait for it
        # and then fail with a unique violation: the whole statement is rolled back.
        self._sql_append = (
            "with prior as ("
            " select request_hash, stream_id, first_version, last_version, event_ids,"
            " result::text as result"
            f" from {s}.requests where tenant_id = $2 and request_id = $3"
            "), cur as ("
            f" select coalesce(max(version), 0) as version from {s}.events where stream_id = $1"
            "), go as ("
            " select cur.version from cur"
            " where not exists (select from prior) and ($4::bigint < 0 or cur.version = $4)"
            # The events travel as ONE JSON parameter, `[[type, payload], ...]`: encoding
            # seven typed arrays cost the client more CPU than the rest of the round trip.
            "), evs as ("
            " select e.ord, e.x->>0 as event_type, e.x->1 as data,"
            " (e.x->1->>'event_id')::uuid as event_id"
            " from jsonb_array_elements($5::text::jsonb) with ordinality as e(x, ord)"
            "), ins as ("
            f" insert into {s}.events (stream_id, version, event_id, event_type, tenant_id,"
            " occurred_at, correlation_id, causation_id, data, metadata)"
            " select $1, go.version + evs.ord, evs.event_id, evs.event_type, $2,"
            " (evs.data->>'occurred_at')::timestamptz, (evs.data->>'correlation_id')::uuid,"
            " (evs.data->>'causation_id')::uuid, evs.data, $6::text::jsonb"
            " from go cross join evs order by evs.ord"
            "), req as ("
            f" insert into {s}.requests (tenant_id, request_id, request_hash, stream_id,"
            " first_version, last_version, event_ids, result)"
            " select $2, $3, $7, $1, go.version + 1, go.version + ids.n, ids.event_ids,"
            " $8::text::jsonb"
            " from go cross join (select count(*) as n, array_agg(event_id order by ord)"
            " as event_ids from evs) as ids where $3::text is not null"
            ")"
            " select cur.version as current_version, p.*"
            " from cur left join prior p on true"
        )
        # Group commit: the same statement for many appends (arrays, one element each; `i`
        # is an append's place). A batch never holds two appends of one stream or request,
        # so their rows cannot collide with each other; each one's version is read from the
        # statement's snapshot, as above.
        self._sql_append_many = (
            "with a as ("
            " select * from unnest($1::text[], $2::text[], $3::text[], $4::bigint[],"
            " $5::text[], $6::text[], $7::text[], $8::text[]) with ordinality"
            " as a(stream_id, tenant_id, request_id, expected, events, metadata, request_hash,"
            " result, i)"
            "), prior as ("
            " select a.i, r.request_hash, r.stream_id, r.first_version, r.last_version,"
            " r.event_ids, r.result::text as result"
            # One index probe per append: `offset 0` keeps the planner from turning the
            # lateral lookup into a join (a hash join scans the whole table).
            f" from a cross join lateral (select * from {s}.requests r"
            " where r.tenant_id = a.tenant_id and r.request_id = a.request_id offset 0) r"
            "), cur as ("
            " select a.i, (select coalesce(max(e.version), 0)"
            f" from {s}.events e where e.stream_id = a.stream_id) as version from a"
            "), go as ("
            " select a.*, cur.version from a join cur on cur.i = a.i"
            " where not exists (select from prior p where p.i = a.i)"
            " and (a.expected < 0 or cur.version = a.expected)"
            "), evs as ("
            " select go.i, go.stream_id, go.tenant_id, go.version, go.metadata, e.ord,"
            " e.x->>0 as event_type, e.x->1 as data, (e.x->1->>'event_id')::uuid as event_id"
            " from go cross join lateral jsonb_array_elements(go.events::jsonb)"
            " with ordinality as e(x, ord)"
            "), ins as ("
            f" insert into {s}.events (stream_id, version, event_id, event_type, tenant_id,"
            " occurred_at, correlation_id, causation_id, data, metadata)"
            " select evs.stream_id, evs.version + evs.ord, evs.event_id, evs.event_type,"
            " evs.tenant_id, (evs.data->>'occurred_at')::timestamptz,"
            " (evs.data->>'correlation_id')::uuid, (evs.data->>'causation_id')::uuid,"
            " evs.data, evs.metadata::jsonb"
            " from evs order by evs.i, evs.ord"
            "), req as ("
            f" insert into {s}.requests (tenant_id, request_id, request_hash, stream_id,"
            " first_version, last_version, event_ids, result)"
            " select go.tenant_id, go.request_id, go.request_hash, go.stream_id,"
            " go.version + 1, go.version + ids.n, ids.event_ids, go.result::jsonb"
            " from go join (select evs.i, count(*) as n,"
            " array_agg(evs.event_id order by evs.ord) as event_ids from evs group by evs.i)"
            " as ids on ids.i = go.i where go.request_id is not null"
            ")"
            " select cur.i, cur.version as current_version, p.request_hash, p.stream_id,"
            " p.first_version, p.last_version, p.event_ids, p.result"
            " from cur left join prior p on p.i = cur.i order by cur.i"
        )
        # The payload names this store instance, so its own listeners (woken directly) skip
        # the echo of their own appends.
        self._instance = uuid.uuid4().hex
        self._sql_notify = "select pg_notify($1, $2)"
        self._sql_lookup = (
            "select request_hash, stream_id, first_version, last_version, event_ids, "
            f"result::text as result from {s}.requests where tenant_id = $1 and request_id = $2"
        )
        self._sql_version = f"select coalesce(max(version), 0) from {s}.events where stream_id = $1"
        # Served by the partial index on first events (migration 0003), not a table scan.
        self._sql_list_streams = (
            f"select stream_id from {s}.events where version = 1 "
            "and left(stream_id, length($1)) = $1 order by stream_id"
        )
        self._sql_read_stream = (
            f"select {_COLUMNS} from {s}.events where stream_id = $1 and version >= $2 "
            "order by version"
        )
        # Only rows of transactions older than the oldest one still running
        # (pg_snapshot_xmin): every row a reader could see later has a transaction_id at or
        # above that horizon, so it sorts after any checkpoint taken here. Ordering by
        # (transaction_id, position) also keeps each stream in version order: a writer reads
        # the stream version before its transaction gets an xid (at its first insert), so the
        # transaction that wrote version n committed before that xid was assigned and has a
        # smaller xid. The index events_global_order_idx serves the range and the order.
        self._sql_read_all = (
            f"select {_COLUMNS} from {s}.events "
            "where (transaction_id, position) > ($1::xid8, $2::bigint) "
            "and transaction_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "order by transaction_id, position limit $3"
        )
        # What read_all leaves out after a checkpoint: rows of transactions at or above the
        # horizon (committed ones among them wait for an older transaction to end).
        # The first such row in index order (not `exists`, whose generic plan scans the
        # whole table): the plan walks events_global_order_idx from the checkpoint.
        self._sql_held_back = (
            f"select (select transaction_id from {s}.events "
            "where (transaction_id, position) > ($1::xid8, $2::bigint) "
            "and transaction_id >= pg_snapshot_xmin(pg_current_snapshot()) "
            "order by transaction_id, position limit 1) is not null"
        )
        self._sql_head = (
            f"select transaction_id, position from {s}.events "
            "where transaction_id < pg_snapshot_xmin(pg_current_snapshot()) "
            "order by transaction_id desc, position desc limit 1"
        )
        self._sql_save_snapshot = (
            f"insert into {s}.snapshots as old (stream_id, version, schema_version, state) "
            "values ($1, $2, $3, $4::text::jsonb) on conflict (stream_id) do update "
            "set version = excluded.version, schema_version = excluded.schema_version, "
            "state = excluded.state, saved_at = now() "
            "where old.version <= excluded.version or old.schema_version <> excluded.schema_version"
        )
        self._sql_load_snapshot = (
            "select version, schema_version, state::text as state "
            f"from {s}.snapshots where stream_id = $1"
        )

    @traced_append
    async def append(
        self,
        stream_id: str,
        events: Sequence[DomainEvent],
        /,
        *,
        expected_version: int,
        request_id: str | None = None,
        result: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        command: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        tenant_id = check_append(stream_id, events, expected_version)
        fingerprint = (
            request_fingerprint(stream_id, events, command) if request_id is not None else None
        )
        result_json = to_json(result)
        append = _Append(
            stream_id=stream_id,
            tenant_id=tenant_id,
            events=events,
            expected_version=expected_version,
            request_id=request_id,
            fingerprint=fingerprint,
            result_json=result_json,
            metadata_json=json.dumps(dict(metadata or {})),
        )
        if self._group_commit:
            grouped = await self._append_grouped(append)
            if grouped is not None:
                if not grouped.replayed:
                    self._committed(append, grouped)
                return grouped
            # The shared statement failed as a whole: this append is decided alone.
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._pool.acquire() as conn:
                    appended = await self._append_once(conn, append)
                if not appended.replayed:
                    self._committed(append, appended)
                return appended
            except asyncpg.UniqueViolationError as exc:
                # Another writer won a race; this append's statement was rolled back.
                if request_id is not None:
                    prior = await self._lookup(tenant_id, request_id)
                    if prior is not None:  # a concurrent duplicate of this command won
                        stored_hash, replayed = prior
                        check_fingerprint(request_id, stored_hash, fingerprint)
                        return replayed
                if exc.constraint_name == "events_event_id_key":
                    raise AlreadyExists(
                        f"an event of this append is already stored: {exc}"
                    ) from None
                if exc.constraint_name != "events_pkey":
                    raise
                if expected_version == ANY and attempt < ANY_RETRIES:
                    continue
                actual = await self.stream_version(stream_id)
                raise ConcurrencyConflict(stream_id, expected_version, actual) from None

    async def append_in(
        self,
        conn: PgConnection,
        stream_id: str,
        events: Sequence[DomainEvent],
        /,
        *,
        expected_version: int,
        request_id: str | None = None,
        result: Mapping[str, Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        command: Mapping[str, Any] | None = None,
    ) -> AppendResult:
        """`append` on the caller's connection, inside the caller's transaction: a service
        that commits a batch of appends together with its own rows (group commit) calls this
        for each stream, then `appended()` after its commit. A conflict raises
        `ConcurrencyConflict` without aborting the transaction (unless a concurrent writer
        made the insert fail: then the caller's transaction is aborted and retried)."""
        tenant_id = check_append(stream_id, events, expected_version)
        fingerprint = (
            request_fingerprint(stream_id, events, command) if request_id is not None else None
        )
        append = _Append(
            stream_id=stream_id,
            tenant_id=tenant_id,
            events=events,
            expected_version=expected_version,
            request_id=request_id,
            fingerprint=fingerprint,
            result_json=to_json(result),
            metadata_json=json.dumps(dict(metadata or {})),
        )
        return await self._append_once(conn, append)

    def appended(self) -> None:
        """Wake the tailing readers after a commit that held `append_in` appends."""
        for watcher in self._commit_watchers:
            watcher(None)
        if self._notify:
            self._announce()

    @contextmanager
    def watching_commits(self, watcher: CommitWatcher) -> Iterator[None]:
        """While open, `watcher` is told of every append committed through this instance (the
        service's own outbox relay publishes them without reading them back)."""
        self._commit_watchers.append(watcher)
        try:
            yield
        finally:
            self._commit_watchers.remove(watcher)

    def _committed(self, a: _Append, appended: AppendResult) -> None:
        if self._commit_watchers:
            events = _recorded_now(a, appended.first_version)
            for watcher in self._commit_watchers:
                watcher(events)
        if self._notify:
            self._announce()

    async def _append_once(self, conn: PgConnection, a: _Append) -> AppendResult:
        args = _args(a)
        if self._hold_transaction is None:
            row = await conn.fetchrow(self._sql_append, *args)
        else:
            async with conn.transaction():
                row = await conn.fetchrow(self._sql_append, *args)
                await self._hold_transaction(conn)
        assert row is not None
        return _outcome(a, row)

    # --- group commit ------------------------------------------------------------------------

    async def _append_grouped(self, a: _Append) -> AppendResult | None:
        """`a` decided in a shared statement; None when that statement failed as a whole."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[AppendResult | None] = loop.create_future()
        self._queue.append((a, future))
        running = sum(1 for t in self._flushers if not t.done() and t.get_loop() is loop)
        if running < GROUP_MAX_IN_FLIGHT:
            task = loop.create_task(self._flush())
            self._flushers.add(task)
            task.add_done_callback(self._flushers.discard)
        return await future

    def _next_batch(self) -> list[tuple[_Append, asyncio.Future[AppendResult | None]]]:
        """Take the queued appends that may go together now (in queue order): not cancelled,
        at most one per stream and per request, none of a stream or request in flight."""
        batch: list[tuple[_Append, asyncio.Future[AppendResult | None]]] = []
        rest: list[tuple[_Append, asyncio.Future[AppendResult | None]]] = []
        streams, requests = set(self._busy_streams), set(self._busy_requests)
        for item in self._queue:
            a, future = item
            if future.done():
                continue
            request = (a.tenant_id, a.request_id) if a.request_id is not None else None
            if (
                len(batch) >= GROUP_MAX_APPENDS
                or a.stream_id in streams
                or (request is not None and request in requests)
            ):
                rest.append(item)
                continue
            batch.append(item)
            streams.add(a.stream_id)
            if request is not None:
                requests.add(request)
        self._queue = rest
        return batch

    async def _flush(self) -> None:
        """Send batches until nothing queued can go (what waits for a statement in flight
        is taken by that statement's flusher when it is done)."""
        while batch := self._next_batch():
            streams = {a.stream_id for a, _ in batch}
            requests = {(a.tenant_id, a.request_id) for a, _ in batch if a.request_id is not None}
            self._busy_streams |= streams
            self._busy_requests |= requests
            try:
                await self._send_batch(batch)
            except Exception as exc:  # not the appends' own outcomes: each caller gets it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            except BaseException:  # cancelled (the loop is closing): so are the callers
                for _, future in batch:
                    future.cancel()
                raise
            finally:
                self._busy_streams -= streams
                self._busy_requests -= requests

    async def _send_batch(
        self, batch: list[tuple[_Append, asyncio.Future[AppendResult | None]]]
    ) -> None:
        appends = [a for a, _ in batch]
        try:
            async with self._pool.acquire() as conn:
                if len(appends) == 1:
                    rows = [await conn.fetchrow(self._sql_append, *_args(appends[0]))]
                else:
                    self.group_statements += 1
                    self.group_appends += len(appends)
                    rows = await conn.fetch(
                        self._sql_append_many,
                        *(list(c) for c in zip(*map(_args, appends), strict=True)),
                    )
        except PG_OUTAGE_ERRORS as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except asyncpg.PostgresError:
            # A race lost to another process (unique violation), or one append's bad data:
            # nothing of the statement was stored; each append is decided alone.
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            return
        assert len(rows) == len(batch)
        for (a, future), row in zip(batch, rows, strict=True):
            if future.done():
                continue
            assert row is not None
            try:
                future.set_result(_outcome(a, row))
            except Exception as exc:  # the append's own outcome: a conflict, a reused key
                future.set_exception(exc)

    def _announce(self) -> None:
        for wakeup in self._local_listeners:
            wakeup.set()
        self._announce_to_server()

    def _announce_to_server(self) -> None:
        """NOTIFY listeners, after the append's commit and off its path.

        A statement of its own: a transaction without an xid holds PostgreSQL's cluster-wide
        notify lock only for an instant, while NOTIFY inside the append would hold it across
        the commit's WAL flush and serialise all appends. Appends that complete while a
        NOTIFY is in flight share the next one, so under load NOTIFY costs next to nothing
        (figures: scripts/append_throughput.py, which compares the NOTIFY modes).
        """
        self._notify_pending = True
        loop = asyncio.get_running_loop()
        if self._notifier is None or self._notifier.done() or self._notifier.get_loop() is not loop:
            self._notifier = loop.create_task(self._send_notifies())

    async def _send_notifies(self) -> None:
        # Leaves the loop only when no append completed since the last NOTIFY was sent.
        while self._notify_pending:
            self._notify_pending = False
            try:
                async with self._pool.acquire() as conn:
                    await conn.execute(self._sql_notify, self.channel, self._instance)
            except Exception as exc:  # a wake-up is only a hint; readers also poll
                _log.warning("NOTIFY on %s failed: %s", self.channel, exc)
                return

    async def aclose(self) -> None:
        """Wait for pending group commits and NOTIFY; call before closing the pool."""
        if self._flushers:
            await asyncio.gather(*self._flushers, return_exceptions=True)
        if self._notifier is not None:
            await self._notifier

    async def lookup_request(
        self, tenant_id: str, request_id: str, *, command: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        prior = await self._lookup(tenant_id, request_id)
        if prior is None:
            return None
        stored_hash, replayed = prior
        if command is not None:
            check_fingerprint(request_id, stored_hash, request_fingerprint("", (), command))
        return replayed

    async def _lookup(self, tenant_id: str, request_id: str) -> tuple[str, AppendResult] | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_lookup, tenant_id, request_id)
        return None if row is None else (row["request_hash"], _replayed(row))

    async def read_stream(self, stream_id: str, *, from_version: int = 1) -> list[RecordedEvent]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_read_stream, stream_id, from_version)
        return [_recorded(r) for r in rows]

    async def stream_version(self, stream_id: str) -> int:
        async with self._pool.acquire() as conn:
            version: int = await conn.fetchval(self._sql_version, stream_id)
        return version

    async def list_streams(self, prefix: str) -> list[str]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_list_streams, prefix)
        return [r["stream_id"] for r in rows]

    async def read_all(
        self, after: GlobalPosition = GlobalPosition.START, limit: int = 1000
    ) -> list[RecordedEvent]:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(self._sql_read_all, after.transaction_id, after.position, limit)
        return [_recorded(r) for r in rows]

    async def held_back(self, after: GlobalPosition) -> bool:
        async with self._pool.acquire() as conn:
            held: bool = await conn.fetchval(
                self._sql_held_back, after.transaction_id, after.position
            )
        return held

    async def head(self) -> GlobalPosition:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_head)
        return (
            GlobalPosition.START
            if row is None
            else GlobalPosition(row["transaction_id"], row["position"])
        )

    async def save_snapshot(
        self, stream_id: str, version: int, state: Mapping[str, Any], schema_version: int
    ) -> None:
        if version < 1:
            raise ValueError(f"a snapshot needs a version >= 1, got {version}")
        async with self._pool.acquire() as conn:
            await conn.execute(
                self._sql_save_snapshot, stream_id, version, schema_version, to_json(state)
            )

    async def load_snapshot(self, stream_id: str) -> Snapshot | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_load_snapshot, stream_id)
        if row is None:
            return None
        state = from_json(row["state"])
        assert state is not None
        return Snapshot(stream_id, row["version"], row["schema_version"], state)

    @asynccontextmanager
    async def listener(
        self, *, own_appends: bool = True, wakeup: Wakeup | None = None
    ) -> AsyncIterator[Wakeup]:
        """Holds one pool connection LISTENing on the schema's channel while open; when the
        connection is lost (a PostgreSQL restart) it listens again on a new one, with backoff,
        and wakes the reader once it does (a NOTIFY sent meanwhile was lost). This instance's
        own appends wake it directly (unless `own_appends=False`), not through the server.
        `wakeup` is the one to set (a new one by default)."""
        wakeup = Wakeup() if wakeup is None else wakeup

        def on_notify(_conn: PgConnection, _pid: int, _channel: str, payload: object) -> None:
            if payload != self._instance:
                wakeup.set()

        if own_appends:
            self._local_listeners.add(wakeup)
        tried = asyncio.Event()  # set once the first LISTEN is in place (or failed)
        task = asyncio.get_running_loop().create_task(
            self._keep_listening(on_notify, wakeup, tried)
        )
        try:
            await tried.wait()
            yield wakeup
        finally:
            self._local_listeners.discard(wakeup)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_listening(
        self, on_notify: Callable[..., None], wakeup: Wakeup, tried: asyncio.Event
    ) -> None:
        delay = LISTEN_RETRY_MIN_S
        again = False
        while True:
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener(self.channel, on_notify)
                    if again:
                        _log.info("listening on %s again", self.channel)
                        wakeup.set()  # appends made while not listening sent no wake-up
                    again = True
                    tried.set()
                    delay = LISTEN_RETRY_MIN_S
                    lost = asyncio.Event()
                    on_lost = functools.partial(_set_on_termination, lost)
                    conn.add_termination_listener(on_lost)
                    try:
                        # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a
                        # cancellation that arrives as the awaited event is set (here: the
                        # connection lost while its reader fails), and this loop would then
                        # outlive the listener that cancelled it.
                        while not conn.is_closed() and not lost.is_set():
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(LISTEN_CHECK_S):
                                    await lost.wait()
                    finally:
                        conn.remove_termination_listener(on_lost)
                        if not conn.is_closed():
                            with contextlib.suppress(*PG_OUTAGE_ERRORS):
                                await conn.remove_listener(self.channel, on_notify)
                _log.warning("LISTEN connection on %s lost; listening again", self.channel)
            except PG_OUTAGE_ERRORS as exc:
                again = True
                tried.set()
                _log.warning(
                    "cannot LISTEN on %s (%r); retrying in %.1f s", self.channel, exc, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, LISTEN_RETRY_MAX_S)


@dataclass(frozen=True, kw_only=True)
class _Append:
    """One append's arguments, prepared once and reused across retries."""

    stream_id: str
    tenant_id: str
    events: Sequence[DomainEvent]
    expected_version: int
    request_id: str | None
    fingerprint: str | None
    result_json: str | None
    metadata_json: str

    @functools.cached_property
    def events_json(self) -> str:
        """The events as ONE JSON parameter, `[[type, payload], ...]`. Wire names are
        `<context>.<Name>.v<N>` (no characters to escape); each payload is
        DomainEvent.payload() as JSON, serialised by pydantic-core in one step."""
        return (
            "[" + ",".join(f'["{e.event_type}",{e.model_dump_json()}]' for e in self.events) + "]"
        )


def _args(a: _Append) -> tuple[Any, ...]:
    """The parameters of the append statements, in their order."""
    return (
        a.stream_id,
        a.tenant_id,
        a.request_id,
        a.expected_version,
        a.events_json,
        a.metadata_json,
        a.fingerprint,
        a.result_json,
    )


def _outcome(a: _Append, row: asyncpg.Record) -> AppendResult:
    """What the append statement's row for `a` means: replayed, stored, or a conflict."""
    if row["request_hash"] is not None:
        assert a.request_id is not None
        check_fingerprint(a.request_id, row["request_hash"], a.fingerprint)
        return _replayed(row)
    current: int = row["current_version"]
    if a.expected_version != ANY and current != a.expected_version:
        raise ConcurrencyConflict(a.stream_id, a.expected_version, current)
    return AppendResult(
        stream_id=a.stream_id,
        first_version=current + 1,
        last_version=current + len(a.events),
        event_ids=tuple(e.event_id for e in a.events),
        result=from_json(a.result_json),
        replayed=False,
    )


def _set_on_termination(event: asyncio.Event, _conn: object) -> None:
    event.set()


def _replayed(row: asyncpg.Record) -> AppendResult:
    return AppendResult(
        stream_id=row["stream_id"],
        first_version=row["first_version"],
        last_version=row["last_version"],
        event_ids=tuple(row["event_ids"]),
        result=from_json(row["result"]),
        replayed=True,
    )


def _recorded_now(a: _Append, first_version: int) -> list[RecordedEvent]:
    """The events of `a`, committed just now as versions `first_version`..., as `read_all`
    would return them (data and metadata as stored), except for their global position."""
    metadata = json.loads(a.metadata_json)
    payloads = [data for _, data in json.loads(a.events_json)]
    recorded_at = datetime.now(UTC)
    return [
        RecordedEvent(
            position=0,
            transaction_id=0,
            stream_id=a.stream_id,
            version=first_version + i,
            event_id=event.event_id,
            event_type=event.event_type,
            tenant_id=a.tenant_id,
            occurred_at=event.occurred_at,
            recorded_at=recorded_at,
            correlation_id=event.correlation_id,
            causation_id=event.causation_id,
            data=data,
            metadata=metadata,
        )
        for i, (event, data) in enumerate(zip(a.events, payloads, strict=True))
    ]


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    data = json.loads(row["data"])
    metadata = json.loads(row["metadata"])
    return RecordedEvent(
        position=row["position"],
        transaction_id=row["transaction_id"],
        stream_id=row["stream_id"],
        version=row["version"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        tenant_id=row["tenant_id"],
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
        correlation_id=row["correlation_id"],
        causation_id=row["causation_id"],
        data=data,
        metadata=metadata,
    )
