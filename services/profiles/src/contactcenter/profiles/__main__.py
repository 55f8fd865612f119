"""`python -m contactcenter.profiles`: serve until SIGINT/SIGTERM.

`python -m contactcenter.profiles asyncapi > services/profiles/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import create_app, definition
from contactcenter.servicekit.cli import service_main


def main(argv: list[str] | None = None) -> None:
    service_main(
        "profiles",
        lambda: create_app(ProfilesSettings()).run(),
        lambda: definition().asyncapi(),
        argv,
    )


if __name__ == "__main__":
    main()
