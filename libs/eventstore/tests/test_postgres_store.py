"""What only the PostgreSQL store has: schemas, transaction visibility, NOTIFY, query plans."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import (
    ANY,
    GlobalPosition,
    PgConnection,
    PostgresEventStore,
    TailPacer,
    apply_migrations,
    notify_channel,
)

ODD_SCHEMA = 'Odd "schema"; drop table x'


async def test_each_schema_is_its_own_store(pool, pg_store, tenant_id, happened):
    await apply_migrations(pool, ODD_SCHEMA)
    odd = PostgresEventStore(pool, ODD_SCHEMA)
    sid = stream_id("thing", tenant_id, "1")

    await pg_store.append(sid, [happened(tenant_id, 1)], expected_version=0)
    await odd.append(sid, [happened(tenant_id, 2), happened(tenant_id, 3)], expected_version=0)

    assert [r.data["n"] for r in await pg_store.read_stream(sid)] == [1]
    assert [r.data["n"] for r in await odd.read_stream(sid)] == [2, 3]
    assert len(await odd.read_all(GlobalPosition.START)) == 2
    assert notify_channel(ODD_SCHEMA) != notify_channel("svc")
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "select table_name from information_schema.tables where table_schema = $1",
            ODD_SCHEMA,
        )
    assert {"events", "requests", "snapshots", "schema_migrations"} <= {
        t["table_name"] for t in tables
    }
    await odd.aclose()


async def test_read_all_hides_commits_behind_a_transaction_in_flight(
    pool, pg_store, schema, tenant_id, happened
):
    """Deterministically: B commits while A (older xid, lower position) is still open."""
    a_inserted, release_a = asyncio.Event(), asyncio.Event()

    async def hold(conn: PgConnection) -> None:
        a_inserted.set()
        await release_a.wait()

    slow = PostgresEventStore(pool, schema, notify=False, _hold_transaction=hold)
    a_stream, b_stream = (stream_id("thing", tenant_id, x) for x in ("a", "b"))
    a_event, b_event = happened(tenant_id, 1), happened(tenant_id, 2)

    appending_a = asyncio.create_task(slow.append(a_stream, [a_event], expected_version=0))
    await a_inserted.wait()
    await pg_store.append(b_stream, [b_event], expected_version=0)

    # B is committed and visible to plain reads, but read_all holds it back behind A...
    assert [r.event_id for r in await pg_store.read_stream(b_stream)] == [b_event.event_id]
    assert await pg_store.read_all(GlobalPosition.START) == []

    release_a.set()
    await appending_a
    # ... so a checkpoint taken before A committed can never be past A.
    recorded = await pg_store.read_all(GlobalPosition.START)
    assert [r.event_id for r in recorded] == [a_event.event_id, b_event.event_id]
    assert recorded[0].transaction_id < recorded[1].transaction_id
    assert recorded[0].position < recorded[1].position


async def test_events_held_back_by_a_transaction_that_notifies_nobody_are_polled_for_soon(
    pool, pg_store, tenant_id, happened
):
    """Any transaction with an xid holds read_all's horizon (a checkpoint, a lease, another
    service's database): no NOTIFY comes when it ends, so a tailing reader must not sleep its
    whole idle interval while committed events wait behind it."""
    pacer = TailPacer(pg_store, idle_s=0.25, first_s=0.001, max_s=0.004)
    async with pool.acquire() as blocker:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.fetchval("select pg_current_xact_id()")  # takes an xid, writes nothing
        sid = stream_id("thing", tenant_id, "held")
        await pg_store.append(sid, [happened(tenant_id, 1)], expected_version=0)

        assert await pg_store.read_all(GlobalPosition.START) == []
        assert await pg_store.held_back(GlobalPosition.START)
        # Backing off from first_s to max_s, never the idle interval.
        assert [await pacer.timeout_after(GlobalPosition.START) for _ in range(4)] == [
            0.001,
            0.002,
            0.004,
            0.004,
        ]
        await transaction.commit()

    assert not await pg_store.held_back(GlobalPosition.START)
    assert await pacer.timeout_after(GlobalPosition.START) == 0.25
    (recorded,) = await pg_store.read_all(GlobalPosition.START)
    assert not await pg_store.held_back(recorded.global_position)


async def test_read_all_uses_the_global_order_index(pool, pg_store, schema, tenant_id, happened):
    for n in range(40):
        events = [happened(tenant_id, n) for _ in range(50)]
        await pg_store.append(stream_id("thing", tenant_id, str(n)), events, expected_version=0)
    async with pool.acquire() as conn:
        await conn.execute(f"analyze {schema}.events")
        middle = await conn.fetchrow(
            f"select transaction_id, position from {schema}.events order by position offset 1000"
        )
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "explain " + pg_store._sql_read_all.replace("$3", "100"),
                middle["transaction_id"],
                middle["position"],
            )
        )
    assert "events_global_order_idx" in plan, plan
    assert "Sort" not in plan, plan


async def test_notify_reaches_listeners_of_other_replicas_only_for_their_schema(
    database_url, pool, pg_store, schema, tenant_id, happened
):
    await apply_migrations(pool, "other")
    replica_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        replica = PostgresEventStore(replica_pool, schema)
        other = PostgresEventStore(replica_pool, "other")
        async with replica.listener() as appends, other.listener() as other_appends:
            await pg_store.append(
                stream_id("thing", tenant_id, "1"), [happened(tenant_id)], expected_version=ANY
            )
            assert await appends.wait(5.0)
            assert not await other_appends.wait(0.2)
    finally:
        await replica_pool.close()


async def test_notify_can_be_turned_off(pool, schema, tenant_id, happened):
    quiet = PostgresEventStore(pool, schema, notify=False)
    listening = PostgresEventStore(pool, schema)
    async with listening.listener() as appends:
        await quiet.append(
            stream_id("thing", tenant_id, "1"), [happened(tenant_id)], expected_version=0
        )
        assert not await appends.wait(0.2)


async def test_a_listener_may_leave_out_its_own_instances_appends(
    pool, schema, tenant_id, happened
):
    this = PostgresEventStore(pool, schema)
    other = PostgresEventStore(pool, schema)
    try:
        async with this.listener(own_appends=False) as appends:
            await this.append(
                stream_id("thing", tenant_id, "1"), [happened(tenant_id)], expected_version=0
            )
            assert not await appends.wait(0.3)
            await other.append(
                stream_id("thing", tenant_id, "2"), [happened(tenant_id)], expected_version=0
            )
            assert await appends.wait(5.0)
    finally:
        await this.aclose()
        await other.aclose()


async def test_any_retries_until_it_lands(pool, schema, tenant_id, happened):
    """Many writers, one stream, ANY: every append lands once, versions dense."""
    store = PostgresEventStore(pool, schema, notify=False)
    sid = stream_id("thing", tenant_id, uuid.uuid4().hex)
    results = await asyncio.gather(
        *(store.append(sid, [happened(tenant_id, n)], expected_version=ANY) for n in range(40))
    )
    assert sorted(r.first_version for r in results) == list(range(1, 41))
    assert [r.version for r in await store.read_stream(sid)] == list(range(1, 41))


async def test_append_in_commits_with_the_callers_transaction(pool, pg_store, tenant_id, happened):
    """Group commit: appends to several streams and the caller's own rows, one transaction."""
    from contactcenter.contracts.errors import ConcurrencyConflict

    a, b = stream_id("thing", tenant_id, "a"), stream_id("thing", tenant_id, "b")
    await pg_store.append(b, [happened(tenant_id, 0)], expected_version=0)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await pg_store.append_in(conn, a, [happened(tenant_id, 1)], expected_version=0)
        try:
            await pg_store.append_in(conn, b, [happened(tenant_id, 2)], expected_version=0)
        except ConcurrencyConflict:
            pass  # refused without aborting the transaction
        else:
            raise AssertionError("stream b has a version already")
        replayed = await pg_store.append_in(
            conn, b, [happened(tenant_id, 3)], expected_version=1, request_id="r-1"
        )
        assert await pg_store.read_stream(a) == []  # not committed yet
        await tx.rollback()
    assert await pg_store.read_stream(a) == []
    assert [r.data["n"] for r in await pg_store.read_stream(b)] == [0]
    async with pool.acquire() as conn, conn.transaction():
        await pg_store.append_in(conn, a, [happened(tenant_id, 1)], expected_version=0)
        replayed = await pg_store.append_in(
            conn, b, [happened(tenant_id, 3)], expected_version=1, request_id="r-1"
        )
    pg_store.appended()
    assert not replayed.replayed
    assert [r.data["n"] for r in await pg_store.read_stream(a)] == [1]
    assert [r.data["n"] for r in await pg_store.read_stream(b)] == [0, 3]
    again = await pg_store.lookup_request(tenant_id, "r-1")
    assert again is not None and again.replayed


async def test_listener_listens_again_after_losing_its_connection(
    database_url, pool, pg_store, schema, tenant_id, happened
):
    """A PostgreSQL restart (here: the server ending the LISTEN session) must not leave the
    reader without wake-ups: it listens again on a new connection."""
    replica_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        replica = PostgresEventStore(replica_pool, schema)
        async with replica.listener() as appends:
            async with pool.acquire() as conn:
                ended = await conn.fetchval(
                    "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = current_database() and query ilike 'listen%'"
                )
            assert ended == 1
            await appends.wait(2.0)  # the wake-up given on listening again
            appends_after = []
            for n in range(3):  # after the loss, each append wakes the reader again
                await pg_store.append(
                    stream_id("thing", tenant_id, "1"),
                    [happened(tenant_id, n)],
                    expected_version=ANY,
                )
                appends_after.append(await appends.wait(5.0))
            assert appends_after == [True, True, True]
    finally:
        await replica_pool.close()


async def test_group_commit_decides_each_append_of_a_shared_statement_alone(
    pg_group_store, tenant_id, happened
):
    """Concurrent appends share statements, and each keeps the outcome it would have alone:
    stored, replayed, a conflict, a reused request id, a duplicate event id (which fails the
    shared statement, so its other appends are decided again alone)."""
    from contactcenter.contracts.errors import AlreadyExists, ConcurrencyConflict
    from contactcenter.eventstore import IdempotencyKeyReused

    store = pg_group_store
    existing = stream_id("thing", tenant_id, "existing")
    await store.append(existing, [happened(tenant_id, 0)], expected_version=0, request_id="r0")
    dup = happened(tenant_id, 99)
    await store.append(stream_id("thing", tenant_id, "dup"), [dup], expected_version=0)

    async def fresh(n: int) -> object:
        sid = stream_id("thing", tenant_id, f"s{n}")
        return await store.append(
            sid,
            [happened(tenant_id, n), happened(tenant_id, n + 1000)],
            expected_version=0,
            request_id=f"req-{n}",
            result={"n": n},
        )

    async def outcome(call: object) -> object:
        try:
            return await call  # type: ignore[misc]
        except Exception as exc:
            return exc

    calls = [outcome(fresh(n)) for n in range(40)]
    calls += [
        # replayed: the request of the existing stream again
        outcome(
            store.append(existing, [happened(tenant_id, 0)], expected_version=0, request_id="r0")
        ),
        # a conflict: the existing stream is at version 1
        outcome(store.append(existing, [happened(tenant_id, 5)], expected_version=0)),
        # a request id reused for another command
        outcome(
            store.append(existing, [happened(tenant_id, 6)], expected_version=1, request_id="r0")
        ),
        # an event id already stored: fails its statement, then alone
        outcome(store.append(stream_id("thing", tenant_id, "again"), [dup], expected_version=0)),
    ]
    results = await asyncio.gather(*calls)

    assert store.group_statements >= 1 and store.group_appends > store.group_statements
    for n, result in enumerate(results[:40]):
        assert not isinstance(result, Exception), result
        assert (result.first_version, result.last_version, result.replayed) == (1, 2, False)
        assert result.result == {"n": n}
        records = await store.read_stream(stream_id("thing", tenant_id, f"s{n}"))
        assert [r.data["n"] for r in records] == [n, n + 1000]
        assert [r.event_id for r in records] == list(result.event_ids)
    replayed, conflict, reused, again = results[40:]
    assert replayed.replayed and replayed.first_version == 1
    assert isinstance(conflict, ConcurrencyConflict)
    assert isinstance(reused, IdempotencyKeyReused)
    assert isinstance(again, AlreadyExists)
    assert [r.data["n"] for r in await store.read_stream(existing)] == [0]
    assert await store.read_stream(stream_id("thing", tenant_id, "again")) == []
    # A retry of a grouped request is replayed with the first answer.
    retry = await fresh(3)
    assert retry.replayed and retry.result == {"n": 3} and retry.event_ids == results[3].event_ids
    # Every event is in the global order once, each stream in version order.
    everything = await store.read_all(GlobalPosition.START, 10_000)
    assert len(everything) == 2 + 80
    assert len({r.event_id for r in everything}) == len(everything)


async def test_group_commit_of_two_processes_racing_on_the_same_streams(pool, tenant_id, happened):
    """Two stores (as two worker processes) append concurrently to the same streams: a shared
    statement that loses a race fails as a whole, its appends are decided again alone, and
    each stream version and each request is stored once."""
    from contactcenter.contracts.errors import ConcurrencyConflict

    stores = [PostgresEventStore(pool, "svc", group_commit=True) for _ in range(2)]
    streams = [stream_id("thing", tenant_id, f"race{n}") for n in range(12)]

    async def attempt(store: PostgresEventStore, sid: str, request: str) -> object:
        try:
            return await store.append(
                sid, [happened(tenant_id, 1)], expected_version=0, request_id=request
            )
        except ConcurrencyConflict as exc:
            return exc

    calls = []
    for sid in streams:
        for k, store in enumerate(stores):
            calls.append(attempt(store, sid, f"{sid}-{k}"))  # competing commands
            calls.append(attempt(store, sid, f"{sid}-same"))  # one command sent twice
    outcomes = await asyncio.gather(*calls)
    for store in stores:
        await store.aclose()

    for n, sid in enumerate(streams):
        mine = outcomes[4 * n : 4 * n + 4]
        stored = [o for o in mine if not isinstance(o, Exception) and not o.replayed]
        assert len(stored) == 1, mine
        assert len(await pg_read(pool, sid)) == 1
        same = [o for o in (mine[1], mine[3]) if not isinstance(o, Exception)]
        assert len({o.event_ids for o in same}) <= 1  # a replay gets the first answer


async def pg_read(pool: asyncpg.Pool, sid: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch('select version from "svc".events where stream_id = $1', sid)
