"""`python -m contactcenter.wfm`: serve until SIGINT/SIGTERM; `... asyncapi` prints the
service's AsyncAPI document."""

from __future__ import annotations

import sys

from contactcenter.wfm.config import WfmSettings
from contactcenter.wfm.main import create_app, definition


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["asyncapi"]:
        print(definition().asyncapi())
        return
    if args:
        sys.exit("usage: python -m contactcenter.wfm [asyncapi]")
    create_app(WfmSettings()).run()


if __name__ == "__main__":
    main()
