"""`python -m contactcenter.profiles`: serve until SIGINT/SIGTERM.

`python -m contactcenter.profiles asyncapi > services/profiles/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).

`python -m contactcenter.profiles rotate-master-key` rewraps every stored key under the current
master key (`CC_PROFILES_MASTER_KEY`; the previous one in `CC_PROFILES_RETIRED_MASTER_KEYS`) and
exits 0 once none is left under another key: then the retired key can be removed.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from contactcenter.eventstore import apply_migrations, create_pool
from contactcenter.profiles.adapters.crypto import KeyRing
from contactcenter.profiles.adapters.rotation import RotationReport, rotate_master_key
from contactcenter.profiles.adapters.tables import Tables
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import SERVICE_NAME, create_app, definition
from contactcenter.servicekit import migrations_dir
from contactcenter.servicekit.cli import service_main


async def rotate(settings: ProfilesSettings) -> RotationReport:
    """The `rotate-master-key` command against the service's database."""
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        schema = settings.db_schema or SERVICE_NAME
        await apply_migrations(pool, schema, [migrations_dir(__file__)])
        keyring = KeyRing(settings.master_key_bytes(), settings.retired_master_keys_bytes())
        return await rotate_master_key(Tables(pool, schema), keyring)
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["rotate-master-key"]:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        report = asyncio.run(rotate(ProfilesSettings()))
        print(
            f"master key {report.master_key_id}: {report.rewrapped} keys rewrapped, "
            f"{report.remaining} still under another key"
        )
        if report.remaining:
            sys.exit("rotation incomplete: run it again once every replica uses the new key")
        print("rotation complete: the retired master keys can be removed")
        return
    service_main(
        "profiles",
        lambda: create_app(ProfilesSettings()).run(),
        lambda: definition().asyncapi(),
        args,
    )


if __name__ == "__main__":
    main()
