"""`python -m contactcenter.interactions`: serve until SIGINT/SIGTERM.

`python -m contactcenter.interactions asyncapi > services/interactions/asyncapi.json` writes
the service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app, definition
from contactcenter.servicekit.cli import service_main


def main(argv: list[str] | None = None) -> None:
    service_main(
        "interactions",
        lambda: create_app(InteractionsSettings()).run(),
        lambda: definition().asyncapi(),
        argv,
    )


if __name__ == "__main__":
    main()
