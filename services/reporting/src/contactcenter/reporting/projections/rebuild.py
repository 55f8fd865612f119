"""Rebuild the read models from zero: replay the inbox (every consumed event, in the order it
was first folded) through the same fold into a fresh in-memory state, bulk-write it (COPY)
into shadow tables, then swap them in.

No downtime: the live projection keeps serving and writing the current tables meanwhile. The
swap transaction locks the `rm_meta` row (the live projection's batches take it FOR SHARE, so
they wait), folds the events that arrived during the replay, renames the tables and bumps the
generation; the live projection sees the new generation and reloads its memory from the new
tables before its next batch.

`rebuild()` is the rebuild; `rebuild_database()` opens the database (and applies reporting's
migrations) around it, and `rebuild_with_progress()` shows a progress bar while it runs. The
service's CLI (`python -m contactcenter.reporting rebuild`) and the operator CLI
(`ccctl rebuild`) both call `rebuild_with_progress()`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from contactcenter.reporting.adapters.inbound import read_fact
from contactcenter.reporting.domain.state import ReportingState
from contactcenter.reporting.projections.store import (
    BUCKETS,
    ENTITIES,
    copy_state,
    quote,
    write_changes,
)

if TYPE_CHECKING:
    from rich.console import Console

#: progress(done, total) after each chunk.
Progress = Callable[[int, int], None]

CHUNK = 10_000


@dataclass(frozen=True)
class RebuildResult:
    events: int
    seconds: float
    generation: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def _replay(
    conn: asyncpg.Connection,
    schema: str,
    state: ReportingState,
    after: int,
    until: int | None,
    progress: Progress | None,
    total: int,
    done: int,
) -> tuple[int, int]:
    """Fold inbox rows with after < seq <= until; returns (last seq, events folded).

    One ordered scan through a server-side cursor, read in chunks (a `limit` query per chunk
    may be planned as a full scan and sort each time while the table has no statistics yet,
    e.g. right after a bulk load: quadratic)."""
    s = quote(schema)
    last = after
    bound = "" if until is None else f" and seq <= {int(until)}"
    async with conn.transaction():
        cursor = await conn.cursor(
            f"select seq, tenant_id, type, at_ms, data from {s}.inbox "
            f"where seq > $1{bound} order by seq",
            after,
        )
        apply = state.apply
        fetching = asyncio.ensure_future(cursor.fetch(CHUNK))
        while True:
            rows = await fetching
            if len(rows) == CHUNK:
                # Ask for the next chunk before folding this one: PostgreSQL reads it meanwhile.
                fetching = asyncio.ensure_future(cursor.fetch(CHUNK))
                await asyncio.sleep(0)
            elif not rows:
                return last, done
            for r in rows:
                apply(read_fact(r[2], r[1], r[3], r[4]))
            last = rows[-1][0]
            done += len(rows)
            if progress is not None:
                progress(done, max(total, done))
            if len(rows) < CHUNK:
                return last, done


async def rebuild(
    pool: asyncpg.Pool, schema: str, progress: Progress | None = None
) -> RebuildResult:
    s = quote(schema)
    started = time.perf_counter()
    state = ReportingState()
    async with pool.acquire() as conn:
        until, total = await conn.fetchrow(f"select coalesce(max(seq), 0), count(*) from {s}.inbox")
        if progress is not None:
            progress(0, total)
        last, done = await _replay(conn, schema, state, 0, until, progress, total, 0)
        for table in (ENTITIES, BUCKETS):
            await conn.execute(f"drop table if exists {s}.{table}_next")
            await conn.execute(f"create table {s}.{table}_next (like {s}.{table} including all)")
        for t in state.tenants.values():
            t.drain()
        await copy_state(conn, schema, state, "_next")
        async with conn.transaction():
            await conn.execute(f"select generation from {s}.rm_meta where id = 1 for update")
            # What arrived during the replay, written as changes on top of the copy.
            for t in state.tenants.values():
                t.drain()
            last, done = await _replay(conn, schema, state, last, None, progress, total, done)
            changes = [(tid, *t.drain()) for tid, t in state.tenants.items()]
            await write_changes(conn, schema, state, changes, suffix="_next")
            for table in (ENTITIES, BUCKETS):
                await conn.execute(f"alter table {s}.{table} rename to {table}_old")
                await conn.execute(f"alter table {s}.{table}_next rename to {table}")
                await conn.execute(f"drop table {s}.{table}_old")
            generation = await conn.fetchval(
                f"update {s}.rm_meta set generation = generation + 1 where id = 1 "
                "returning generation"
            )
    return RebuildResult(done, time.perf_counter() - started, generation)


async def rebuild_database(
    database_url: str, schema: str = "reporting", progress: Progress | None = None
) -> RebuildResult:
    """`rebuild()` on reporting's database (its migrations applied first: an empty database
    rebuilds to empty read models)."""
    from contactcenter.eventstore import apply_migrations, create_pool
    from contactcenter.reporting.main import reporting_migrations

    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, schema, [reporting_migrations()])
        return await rebuild(pool, schema, progress)
    finally:
        await pool.close()


async def rebuild_with_progress(
    database_url: str, schema: str = "reporting", console: Console | None = None
) -> RebuildResult:
    """`rebuild_database()` with a progress bar (on `console`, default stdout)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replaying events", total=None)
        return await rebuild_database(
            database_url, schema, lambda done, total: bar.update(task, completed=done, total=total)
        )


def summary(result: RebuildResult) -> str:
    return (
        f"rebuilt from {result.events} events in {result.seconds:.1f} s "
        f"({result.events_per_s:,.0f} events/s); generation {result.generation} swapped in"
    )
