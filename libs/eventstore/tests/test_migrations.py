"""Migrations: ordered, applied once, recorded, checksummed, serialised between replicas."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from contactcenter.eventstore import (
    MigrationChecksumMismatch,
    MigrationError,
    apply_migrations,
)

OWN = [
    "eventstore/0001_event_store.sql",
    "eventstore/0002_consumer_tracking.sql",
    "eventstore/0003_first_events_index.sql",
    "eventstore/0004_stream_heads.sql",
]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


@pytest.fixture
def routing_migrations(tmp_path: Path) -> Path:
    # Written out of order on purpose; they must run by name. 0001 relies on the event store's
    # own tables existing already.
    return write(
        tmp_path / "routing" / "migrations",
        {
            "0010_third.sql": "insert into applied_log (name) values ('0010');",
            "0001_first.sql": (
                "create table applied_log (seq serial primary key, name text not null);"
                "create index events_by_tenant on events (tenant_id);"
                "insert into applied_log (name) values ('0001');"
            ),
            "0002_second.sql": "insert into applied_log (name) values ('0002');",
            "README.md": "not a migration",
        },
    )


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_applies_own_then_service_files_in_order_once(database_url, routing_migrations):
    applied = await apply_migrations(database_url, "routing", [routing_migrations])

    assert applied == [
        *OWN,
        "routing/0001_first.sql",
        "routing/0002_second.sql",
        "routing/0010_third.sql",
    ]
    log = await fetch(database_url, "select name from routing.applied_log order by seq")
    assert [r["name"] for r in log] == ["0001", "0002", "0010"]
    records = await fetch(
        database_url,
        "select namespace, name, checksum, applied_at from routing.schema_migrations "
        "order by applied_at, namespace, name",
    )
    assert [f"{r['namespace']}/{r['name']}" for r in records] == applied
    assert all(len(r["checksum"]) == 64 and r["applied_at"] is not None for r in records)

    assert await apply_migrations(database_url, "routing", [routing_migrations]) == []
    log = await fetch(database_url, "select count(*) from routing.applied_log")
    assert log[0][0] == 3


async def test_new_files_are_applied_later(database_url, routing_migrations):
    await apply_migrations(database_url, "routing", [routing_migrations])
    write(routing_migrations, {"0011_more.sql": "insert into applied_log (name) values ('0011');"})
    assert await apply_migrations(database_url, "routing", [routing_migrations]) == [
        "routing/0011_more.sql"
    ]


async def test_edited_migration_is_refused(database_url, routing_migrations):
    await apply_migrations(database_url, "routing", [routing_migrations])
    write(
        routing_migrations,
        {
            "0002_second.sql": "insert into applied_log (name) values ('edited');",
            "0020_new.sql": "insert into applied_log (name) values ('0020');",
        },
    )

    with pytest.raises(MigrationChecksumMismatch) as raised:
        await apply_migrations(database_url, "routing", [routing_migrations])

    assert (raised.value.namespace, raised.value.name) == ("routing", "0002_second.sql")
    log = await fetch(database_url, "select name from routing.applied_log order by seq")
    assert [r["name"] for r in log] == ["0001", "0002", "0010"]  # 0020 was not applied either


async def test_crlf_checkout_is_not_an_edit(database_url, tmp_path):
    migrations = write(tmp_path / "migrations", {"0001_a.sql": "create table a (n int);\n\n"})
    await apply_migrations(database_url, "svc", [("svc", migrations)])
    (migrations / "0001_a.sql").write_bytes(b"create table a (n int);\r\n\r\n")
    assert await apply_migrations(database_url, "svc", [("svc", migrations)]) == []


async def test_failed_migration_rolls_back_and_is_not_recorded(database_url, tmp_path):
    migrations = write(
        tmp_path / "migrations",
        {
            "0001_ok.sql": "create table kept (n int);",
            "0002_broken.sql": "create table half (n int); insert into nowhere values (1);",
        },
    )
    with pytest.raises(MigrationError, match=r"0002_broken\.sql"):
        await apply_migrations(database_url, "svc", [("svc", migrations)])

    tables = await fetch(
        database_url, "select table_name from information_schema.tables where table_schema='svc'"
    )
    names = {t["table_name"] for t in tables}
    assert "kept" in names and "half" not in names
    recorded = await fetch(database_url, "select name from svc.schema_migrations")
    assert "0002_broken.sql" not in {r["name"] for r in recorded}

    write(migrations, {"0002_broken.sql": "create table half (n int);"})
    assert await apply_migrations(database_url, "svc", [("svc", migrations)]) == [
        "svc/0002_broken.sql"
    ]


async def test_reserved_namespace_and_missing_directory(database_url, tmp_path):
    with pytest.raises(MigrationError, match="reserved"):
        await apply_migrations(database_url, "svc", [("eventstore", tmp_path)])
    with pytest.raises(MigrationError, match="does not exist"):
        await apply_migrations(database_url, "svc", [tmp_path / "nope"])


@pytest.fixture
def racy_migrations(tmp_path: Path) -> Path:
    # A slow migration whose double application would show as a second row.
    return write(
        tmp_path / "wfm" / "migrations",
        {
            "0001_table.sql": "create table seeded (n int not null);",
            "0002_seed.sql": "select pg_sleep(0.2); insert into seeded values (1);",
        },
    )


async def test_concurrent_appliers_apply_each_file_once(database_url, racy_migrations):
    # Five replicas starting together, each on its own connection.
    results = await asyncio.gather(
        *(apply_migrations(database_url, "wfm", [racy_migrations]) for _ in range(5))
    )

    applied = [key for result in results for key in result]
    assert sorted(applied) == sorted([*OWN, "wfm/0001_table.sql", "wfm/0002_seed.sql"])
    rows = await fetch(database_url, "select count(*) from wfm.seeded")
    assert rows[0][0] == 1


_APPLIER = """
import asyncio, json, sys, time
from pathlib import Path
from contactcenter.eventstore import apply_migrations

url, directory, start_at = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))
print(json.dumps(asyncio.run(apply_migrations(url, "wfm", [directory]))))
"""


async def test_concurrent_processes_apply_each_file_once(database_url, racy_migrations):
    start_at = time.time() + 2.0  # all five interpreters are up by then
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _APPLIER,
            database_url,
            str(racy_migrations),
            str(start_at),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(5)
    ]
    outputs = [await p.communicate() for p in processes]

    assert [p.returncode for p in processes] == [0] * 5, [err.decode() for _, err in outputs]
    applied = [key for out, _ in outputs for key in json.loads(out)]
    assert sorted(applied) == sorted([*OWN, "wfm/0001_table.sql", "wfm/0002_seed.sql"])
    rows = await fetch(database_url, "select count(*) from wfm.seeded")
    assert rows[0][0] == 1
