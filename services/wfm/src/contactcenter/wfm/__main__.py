"""`python -m contactcenter.wfm`: serve until SIGINT/SIGTERM; `... asyncapi` prints the
service's AsyncAPI document."""

from __future__ import annotations

from contactcenter.servicekit.cli import service_main
from contactcenter.wfm.config import WfmSettings
from contactcenter.wfm.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    service_main(
        "wfm", lambda: create_app(WfmSettings()).run(), lambda: definition().asyncapi(), argv
    )


if __name__ == "__main__":
    main()
