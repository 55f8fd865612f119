"""`python -m contactcenter.email`: serve until SIGINT/SIGTERM.

`python -m contactcenter.email asyncapi > services/email/asyncapi.json` writes the service's
AsyncAPI document (checked in, compared by a test).
"""

from __future__ import annotations

from contactcenter.email.config import EmailSettings
from contactcenter.email.main import create_app, definition
from contactcenter.servicekit.cli import service_main


def main(argv: list[str] | None = None) -> None:
    service_main(
        "email", lambda: create_app(EmailSettings()).run(), lambda: definition().asyncapi(), argv
    )


if __name__ == "__main__":
    main()
