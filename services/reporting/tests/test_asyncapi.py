"""The checked-in AsyncAPI document is what the service renders."""

from pathlib import Path

from contactcenter.reporting.main import definition


def test_asyncapi_document_is_current() -> None:
    checked_in = (Path(__file__).parents[1] / "asyncapi.json").read_text()
    assert checked_in.strip() == definition().asyncapi().strip(), (
        "run: python -m contactcenter.reporting asyncapi > services/reporting/asyncapi.json"
    )
