"""Small PostgreSQL helpers shared by the store, the migrations and the consumer tracking."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

#: A pool of the caller's (any record class).
PgPool: TypeAlias = "asyncpg.Pool[Any]"
#: A connection, direct or borrowed from a pool.
PgConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"

#: Errors that mean "the database is not reachable right now" (restarting, connection lost),
#: not "this statement is wrong": callers wait and retry them instead of giving up on the work.
PG_OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, socket file gone (includes ConnectionError)
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08
    asyncpg.CannotConnectNowError,  # the server is starting up or shutting down
    asyncpg.exceptions.OperatorInterventionError,  # class 57: admin shutdown, crash shutdown
    asyncpg.InterfaceError,  # the connection was closed under us
)

#: PostgreSQL truncates identifiers (and refuses channel names) beyond 63 bytes.
_MAX_IDENTIFIER_BYTES = 63


def quote_ident(name: str) -> str:
    """`name` as a quoted SQL identifier, safe to put into a statement."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier {name!r}")
    if len(name.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(f"SQL identifier longer than {_MAX_IDENTIFIER_BYTES} bytes: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which a schema's event store announces appends."""
    channel = f"{schema}.events"
    if len(channel.encode()) <= _MAX_IDENTIFIER_BYTES:
        return channel
    return "events." + hashlib.sha256(schema.encode()).hexdigest()[:32]


@asynccontextmanager
async def connection(target: PgPool | PgConnection) -> AsyncIterator[PgConnection]:
    """A connection from a pool (returned afterwards), or the connection given."""
    if isinstance(target, asyncpg.Pool):
        async with target.acquire() as conn:
            yield conn
    else:
        yield target


async def _release_cheaply(conn: asyncpg.Connection[Any]) -> None:
    # asyncpg's default reset costs a round trip on every release (RESET ALL, UNLISTEN *,
    # advisory unlocks, ...), which halves the append rate of a busy service. Our code scopes
    # transactions, listeners and advisory locks itself; what can leak on a cancelled task is
    # an open transaction, and checking for it needs no round trip.
    if conn.is_in_transaction():
        await conn.execute("rollback")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> PgPool:
    """The pool every service and tool uses: asyncpg, with a release that costs no round trip."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, reset=_release_cheaply
    )
    assert pool is not None
    return pool
