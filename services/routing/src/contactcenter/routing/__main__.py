"""`python -m contactcenter.routing`: serve until SIGINT/SIGTERM.

`python -m contactcenter.routing asyncapi > services/routing/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.main import create_app, definition
from contactcenter.servicekit.cli import service_main


def main(argv: list[str] | None = None) -> None:
    service_main(
        "routing",
        lambda: create_app(RoutingSettings()).run(),
        lambda: definition().asyncapi(),
        argv,
    )


if __name__ == "__main__":
    main()
