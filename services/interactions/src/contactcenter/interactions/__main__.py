"""`python -m contactcenter.interactions`: serve until SIGINT/SIGTERM.

`python -m contactcenter.interactions asyncapi > services/interactions/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).

`python -m contactcenter.interactions rotate-master-key` rewraps every stored key under the current
master key (`CC_INTERACTIONS_MASTER_KEY`; the previous one in
`CC_INTERACTIONS_RETIRED_MASTER_KEYS`), in batches, resumable, and exits 0 once none is left
under another key: then the retired key can be removed (see `contactcenter.privacy.rotation`).
"""

from __future__ import annotations

import asyncio
import logging

from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import SERVICE_NAME, create_app, definition
from contactcenter.privacy import (
    KeyRing,
    KeyTable,
    RewrapReport,
    report_rotation,
    rotate_master_key,
)
from contactcenter.servicekit import migrations_dir
from contactcenter.servicekit.cli import service_main


async def rotate(settings: InteractionsSettings) -> RewrapReport:
    """The `rotate-master-key` command against the service's database."""
    schema = settings.db_schema or SERVICE_NAME
    keyring = KeyRing(
        settings.master_key_bytes(),
        settings.retired_master_keys_bytes(),
        context="interactions",
        subject_kind="interaction",
    )
    return await rotate_master_key(
        settings.database_url,
        schema,
        [migrations_dir(__file__)],
        keyring,
        KeyTable(schema),
        secrets=False,
    )


def rotate_command() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return report_rotation(asyncio.run(rotate(InteractionsSettings())))


def main(argv: list[str] | None = None) -> None:
    service_main(
        "interactions",
        lambda: create_app(InteractionsSettings()).run(),
        lambda: definition().asyncapi(),
        argv,
        commands={"rotate-master-key": rotate_command},
    )


if __name__ == "__main__":
    main()
