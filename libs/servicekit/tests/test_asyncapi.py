import json

from contactcenter.contracts.events import DomainEvent
from contactcenter.servicekit import ServiceDefinition


class ThingNoted(DomainEvent):
    event_type = "wfm.ThingNoted.v1"
    note: str


def test_document_names_the_topic_its_event_schema_and_what_it_consumes() -> None:
    definition = ServiceDefinition(
        name="wfm", event_models=[ThingNoted], consumes=["cc.routing.events.v1"]
    )
    text = definition.asyncapi()
    assert text == definition.asyncapi()  # stable, so it can be checked in and compared
    document = json.loads(text)
    channels = json.dumps(document["channels"])
    assert "cc.wfm.events.v1" in channels
    assert "cc.routing.events.v1" in channels
    schemas = json.dumps(document["components"]["schemas"])
    assert "ThingNoted" in schemas and "note" in schemas
