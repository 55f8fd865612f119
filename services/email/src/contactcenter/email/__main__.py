"""`python -m contactcenter.email`: serve until SIGINT/SIGTERM.

`python -m contactcenter.email asyncapi > services/email/asyncapi.json` writes the service's
AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

import sys

from contactcenter.email.config import EmailSettings
from contactcenter.email.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["asyncapi"]:
        print(definition().asyncapi())
        return
    if args:
        sys.exit("usage: python -m contactcenter.email [asyncapi]")
    create_app(EmailSettings()).run()


if __name__ == "__main__":
    main()
