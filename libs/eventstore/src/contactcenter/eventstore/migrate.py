"""Plain ordered SQL migrations, applied once per schema and recorded (the files: `migrations/`).

`apply_migrations(url_or_pool, "routing", [Path("services/routing/migrations")])` creates the
schema, applies this package's own files (namespace `eventstore`) and then each directory's
`*.sql` files in name order, each file in its own transaction with `search_path` set to the
schema (so files use unqualified names). Applied files are recorded in
`<schema>.schema_migrations`; an applied file whose content changed is refused.
Replicas starting together serialise on an advisory lock keyed on the schema.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg

from contactcenter.eventstore._pg import PgConnection, PgPool, connection, quote_ident
from contactcenter.eventstore.errors import MigrationChecksumMismatch, MigrationError

#: The namespace of this package's own migrations, applied before any service's.
EVENTSTORE_NAMESPACE = "eventstore"


@dataclass(frozen=True, slots=True)
class Migration:
    namespace: str
    name: str
    sql: str
    checksum: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def eventstore_migrations_dir() -> Traversable:
    return importlib.resources.files("contactcenter.eventstore") / "migrations"


def load_migrations(namespace: str, directory: Traversable | Path) -> list[Migration]:
    """The `*.sql` files of `directory`, in name order."""
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found = []
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql") and entry.is_file():
            # Line endings normalised: a checkout with CRLF is not an edited migration.
            sql = entry.read_bytes().decode("utf-8").replace("\r\n", "\n")
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            found.append(Migration(namespace, entry.name, sql, checksum))
    return found


def namespace_of(directory: Path) -> str:
    """`services/routing/migrations` -> `routing`; any other folder -> its own name."""
    resolved = directory.resolve()
    return resolved.parent.name if resolved.name == "migrations" else resolved.name


def _lock_key(schema: str) -> int:
    # A stable 64-bit key (Python's hash() differs between processes).
    digest = hashlib.sha256(f"contactcenter.migrations:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def apply_migrations(
    target: str | PgPool,
    schema: str,
    directories: Sequence[Path | tuple[str, Path]] = (),
) -> list[str]:
    """Apply what is not applied yet; returns the keys (`namespace/name`) applied now.

    `directories`: a service's migration folders, as `(namespace, path)` or a bare path whose
    namespace is `namespace_of(path)`. Keep a namespace stable: it is part of the record.
    """
    sources: list[list[Migration]] = [
        load_migrations(EVENTSTORE_NAMESPACE, eventstore_migrations_dir())
    ]
    for item in directories:
        namespace, directory = item if isinstance(item, tuple) else (namespace_of(item), item)
        if namespace == EVENTSTORE_NAMESPACE:
            raise MigrationError(f"namespace {EVENTSTORE_NAMESPACE!r} is reserved")
        sources.append(load_migrations(namespace, directory))
    migrations = [m for source in sources for m in source]

    if isinstance(target, str):
        own = await asyncpg.connect(target)
        try:
            return await _apply_locked(own, schema, migrations)
        finally:
            await own.close()
    async with connection(target) as conn:
        return await _apply_locked(conn, schema, migrations)


async def _apply_locked(conn: PgConnection, schema: str, migrations: list[Migration]) -> list[str]:
    key = _lock_key(schema)
    await conn.execute("select pg_advisory_lock($1)", key)
    try:
        return await _apply(conn, schema, migrations)
    finally:
        if not conn.is_closed():  # a lost connection released its lock already
            await conn.execute("select pg_advisory_unlock($1)", key)


async def _apply(conn: PgConnection, schema: str, migrations: list[Migration]) -> list[str]:
    s = quote_ident(schema)
    await conn.execute(
        f"create schema if not exists {s}; "
        f"create table if not exists {s}.schema_migrations ("
        " namespace text not null, name text not null, checksum text not null,"
        " applied_at timestamptz not null default now(), primary key (namespace, name))"
    )
    applied = {
        (r["namespace"], r["name"]): r["checksum"]
        for r in await conn.fetch(f"select namespace, name, checksum from {s}.schema_migrations")
    }
    # Refuse before applying anything: an edited migration means this schema is not what the
    # files describe.
    for m in migrations:
        recorded = applied.get((m.namespace, m.name))
        if recorded is not None and recorded != m.checksum:
            raise MigrationChecksumMismatch(m.namespace, m.name, recorded, m.checksum)

    done = []
    for m in migrations:
        if (m.namespace, m.name) in applied:
            continue
        try:
            async with conn.transaction():
                await conn.execute(f"set local search_path to {s}")
                await conn.execute(m.sql)
                await conn.execute(
                    f"insert into {s}.schema_migrations (namespace, name, checksum) "
                    "values ($1, $2, $3)",
                    m.namespace,
                    m.name,
                    m.checksum,
                )
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"migration {m.key} failed in schema {schema!r}: {exc}") from exc
        done.append(m.key)
    return done
