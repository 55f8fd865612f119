"""`python -m contactcenter.interactions rotate-master-key` against the real PostgreSQL: after
the rotation every interaction's sealed text opens with the new master key alone, and the keys
erased with a customer's profile stay erased."""

from __future__ import annotations

import base64
import os

import pytest

from contactcenter.eventstore import apply_migrations, create_pool
from contactcenter.interactions.__main__ import rotate
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import SERVICE_NAME
from contactcenter.privacy import ERASED, KeyRing, SubjectKeys, master_key_id, open_or_erased
from contactcenter.servicekit import migrations_dir
from contactcenter.testing.services import temporary_database

pytestmark = pytest.mark.infra

OLD, NEW = os.urandom(32), os.urandom(32)


def ring(master: bytes, retired: tuple[bytes, ...] = ()) -> KeyRing:
    return KeyRing(master, retired, context="interactions", subject_kind="interaction")


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def test_every_interaction_opens_with_the_new_key_alone(database_url: str) -> None:
    import contactcenter.interactions.main as interactions_main

    async with temporary_database(database_url, "test_interactions_rotation") as url:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            await apply_migrations(pool, SERVICE_NAME, [migrations_dir(interactions_main.__file__)])
            old = SubjectKeys(pool, SERVICE_NAME, ring(OLD))
            sealed = {}
            for n in range(6):
                cipher = await old.for_writing("t1", f"i-{n}", [f"p-{n % 2}"])
                sealed[f"i-{n}"] = cipher.seal(f"message {n}")
            async with pool.acquire() as conn, conn.transaction():
                await old.shred_owned(conn, "t1", ["p-1"])  # i-1, i-3, i-5

            settings = InteractionsSettings(
                database_url=url, master_key=b64(NEW), retired_master_keys=b64(OLD)
            )
            report = await rotate(settings)
            assert (report.master_key_id, report.rewrapped, report.remaining) == (
                master_key_id(NEW, "interactions"),
                3,
                0,
            )
            assert (await rotate(settings)).rewrapped == 0

            readers = await SubjectKeys(pool, SERVICE_NAME, ring(NEW)).for_reading(
                "t1", list(sealed)
            )
            opened = {s: open_or_erased(c, sealed[s]) for s, c in readers.items()}
            assert opened == {
                "i-0": "message 0",
                "i-1": ERASED,
                "i-2": "message 2",
                "i-3": ERASED,
                "i-4": "message 4",
                "i-5": ERASED,
            }
        finally:
            await pool.close()


def test_the_command_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    from contactcenter.interactions.__main__ import main

    with pytest.raises(SystemExit, match="rotate-master-key"):
        main(["no-such-command"])
