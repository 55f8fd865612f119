"""Content-addressed storage of raw messages and attachments (the key is the sha256 of the
bytes): a PostgreSQL table in the service's schema, and its in-memory twin. Both pass one
contract test suite. Writing the same bytes twice stores them once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

from contactcenter.eventstore import PgConnection, PgPool


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore(Protocol):
    async def put(self, blobs: Sequence[bytes]) -> list[str]:
        """Store the bytes (durably when this returns); their sha256 keys, in order."""
        ...

    async def get(self, sha256: str) -> bytes | None: ...

    async def exists(self, sha256: str) -> bool: ...


class InMemoryBlobStore:
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def put(self, blobs: Sequence[bytes]) -> list[str]:
        keys = []
        for data in blobs:
            key = sha256_of(data)
            self._blobs.setdefault(key, bytes(data))
            keys.append(key)
        return keys

    async def get(self, sha256: str) -> bytes | None:
        return self._blobs.get(sha256)

    async def exists(self, sha256: str) -> bool:
        return sha256 in self._blobs


class PostgresBlobStore:
    def __init__(self, pool: PgPool, schema: str) -> None:
        self._pool = pool
        s = '"' + schema.replace('"', '""') + '"'
        self._sql_put = (
            f"insert into {s}.blobs (sha256, size_bytes, data) "
            "select k, length(d), d from unnest($1::text[], $2::bytea[]) as t(k, d) "
            "on conflict (sha256) do nothing"
        )
        self._sql_get = f"select data from {s}.blobs where sha256 = $1"

    async def put_in(self, conn: PgConnection, items: Iterable[tuple[str, bytes]]) -> None:
        """Inside the caller's transaction: (sha256, bytes) pairs, each key once."""
        unique = dict(items)
        if unique:
            await conn.execute(self._sql_put, list(unique), list(unique.values()))

    async def put(self, blobs: Sequence[bytes]) -> list[str]:
        keys = [sha256_of(b) for b in blobs]
        async with self._pool.acquire() as conn, conn.transaction():
            await self.put_in(conn, zip(keys, blobs, strict=True))
        return keys

    async def get(self, sha256: str) -> bytes | None:
        async with self._pool.acquire() as conn:
            data: bytes | None = await conn.fetchval(self._sql_get, sha256)
        return data

    async def exists(self, sha256: str) -> bool:
        return await self.get(sha256) is not None
