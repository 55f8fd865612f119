"""What the benchmark scripts beside this file share (they import it as `benchkit`: a script's
folder is first on sys.path). Not a benchmark itself: `make bench` skips it."""

from __future__ import annotations

import asyncpg


def say(message: str) -> None:
    print(message, flush=True)


async def admin_sql(server_url: str, sql: str) -> None:
    """One statement on the server's maintenance database (create or drop a bench database)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
