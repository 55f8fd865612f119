"""`python -m contactcenter.profiles`: serve until SIGINT/SIGTERM.

`python -m contactcenter.profiles asyncapi > services/profiles/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).

`python -m contactcenter.profiles rotate-master-key` rewraps every stored key under the current
master key (`CC_PROFILES_MASTER_KEY`; the previous one in
`CC_PROFILES_RETIRED_MASTER_KEYS`), in batches, resumable, and exits 0 once none is left
under another key: then the retired key can be removed (see `contactcenter.privacy.rotation`).
"""

from __future__ import annotations

import asyncio
import logging

from contactcenter.privacy import KeyTable, RewrapReport, report_rotation, rotate_master_key
from contactcenter.profiles.adapters.crypto import KeyRing
from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import SERVICE_NAME, create_app, definition
from contactcenter.servicekit import migrations_dir
from contactcenter.servicekit.cli import service_main


async def rotate(settings: ProfilesSettings) -> RewrapReport:
    """The `rotate-master-key` command against the service's database."""
    schema = settings.db_schema or SERVICE_NAME
    keyring = KeyRing(settings.master_key_bytes(), settings.retired_master_keys_bytes())
    return await rotate_master_key(
        settings.database_url,
        schema,
        [migrations_dir(__file__)],
        keyring,
        KeyTable(schema, "profile_keys", "profile_id"),
        secrets=True,
    )


def rotate_command() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return report_rotation(asyncio.run(rotate(ProfilesSettings())))


def main(argv: list[str] | None = None) -> None:
    service_main(
        "profiles",
        lambda: create_app(ProfilesSettings()).run(),
        lambda: definition().asyncapi(),
        argv,
        commands={"rotate-master-key": rotate_command},
    )


if __name__ == "__main__":
    main()
