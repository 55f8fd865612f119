"""The one place that names Kafka topics: `cc.<context>.events.v1`; dead letters `<topic>.dlq`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    context: str
    name: str

    @property
    def dlq(self) -> str:
        return f"{self.name}.dlq"


CONTEXTS = ("interactions", "routing", "profiles", "email", "reporting", "wfm")

TOPICS: dict[str, Topic] = {c: Topic(c, f"cc.{c}.events.v1") for c in CONTEXTS}


def topic_for(context: str) -> Topic:
    """The event topic of a bounded context; raises KeyError naming the unknown context."""
    try:
        return TOPICS[context]
    except KeyError:
        raise KeyError(f"no topic registered for context {context!r}") from None


def topic_for_event_type(event_type: str) -> Topic:
    """Events go to the topic of the context named by the first part of their wire name."""
    return topic_for(event_type.split(".", 1)[0])


def all_topic_names(include_dlq: bool = True) -> list[str]:
    names = [t.name for t in TOPICS.values()]
    if include_dlq:
        names += [t.dlq for t in TOPICS.values()]
    return names
