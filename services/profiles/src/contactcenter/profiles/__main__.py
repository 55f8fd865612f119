"""`python -m contactcenter.profiles`: serve until SIGINT/SIGTERM.

`python -m contactcenter.profiles asyncapi > services/profiles/asyncapi.json` writes the
service's AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

import sys

from contactcenter.profiles.config import ProfilesSettings
from contactcenter.profiles.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["asyncapi"]:
        print(definition().asyncapi())
        return
    if args:
        sys.exit("usage: python -m contactcenter.profiles [asyncapi]")
    create_app(ProfilesSettings()).run()


if __name__ == "__main__":
    main()
