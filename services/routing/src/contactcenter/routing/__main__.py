"""`python -m contactcenter.routing`: serve until SIGINT/SIGTERM.

`python -m contactcenter.routing asyncapi > services/routing/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

import sys

from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["asyncapi"]:
        print(definition().asyncapi())
        return
    if args:
        sys.exit("usage: python -m contactcenter.routing [asyncapi]")
    create_app(RoutingSettings()).run()


if __name__ == "__main__":
    main()
