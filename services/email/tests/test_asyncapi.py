"""The checked-in AsyncAPI document is the one the service renders."""

from __future__ import annotations

import json
from pathlib import Path

from contactcenter.email.domain import EVENT_TYPES
from contactcenter.email.main import definition

DOCUMENT = Path(__file__).resolve().parents[1] / "asyncapi.json"


def test_checked_in_asyncapi_is_current() -> None:
    rendered = definition().asyncapi()
    assert DOCUMENT.read_text().strip() == rendered.strip(), (
        "stale; regenerate: uv run --all-packages python -m contactcenter.email "
        "asyncapi > services/email/asyncapi.json"
    )
    document = json.loads(rendered)
    assert {c["address"] for c in document["channels"].values()} == {
        "cc.email.events.v1",
        "cc.profiles.events.v1",  # ProfileErased
        "cc.interactions.events.v1",
    }
    schemas = json.dumps(document["components"]["schemas"])
    assert all(model.__name__ in schemas for model in EVENT_TYPES)
