"""`python -m contactcenter.interactions`: serve until SIGINT/SIGTERM.

`python -m contactcenter.interactions asyncapi > services/interactions/asyncapi.json` writes
the service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

import sys

from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["asyncapi"]:
        print(definition().asyncapi())
        return
    if args:
        sys.exit("usage: python -m contactcenter.interactions [asyncapi]")
    create_app(InteractionsSettings()).run()


if __name__ == "__main__":
    main()
