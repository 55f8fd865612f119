"""The base of every domain event and the registry that maps wire names to models.

Events are frozen pydantic models with a stable wire name `<context>.<EventName>.v<N>`
(never a Python module path). A new version of an event gets a new name plus an upcaster
registered here, so old events stored or published under the old name still load.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

WIRE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[A-Z][A-Za-z0-9]*\.v[1-9][0-9]*$")


def utc_now() -> datetime:
    return datetime.now(UTC)


class DomainEvent(BaseModel):
    """An immutable fact. Subclasses set `event_type` to their wire name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]

    event_id: UUID = Field(default_factory=uuid4)
    tenant_id: str = Field(min_length=1, max_length=128)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    correlation_id: UUID = Field(default_factory=uuid4)
    causation_id: UUID | None = None

    @property
    def context(self) -> str:
        """The bounded context that owns the event (`interactions`, `routing`, ...)."""
        return self.event_type.split(".", 1)[0]

    def payload(self) -> dict[str, Any]:
        """The event as JSON-compatible data (what goes into the store and onto Kafka)."""
        return self.model_dump(mode="json")


class UnknownEventType(LookupError):
    """A wire name that no registered event model or upcaster knows."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
E = TypeVar("E", bound=type[DomainEvent])


class EventRegistry:
    """Maps wire names to event models; upcasts retired versions to their successors."""

    def __init__(self) -> None:
        self._models: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[str, tuple[str, Upcaster]] = {}

    def register(self, model: E) -> E:
        name = getattr(model, "event_type", None)
        if not isinstance(name, str) or not WIRE_NAME.match(name):
            raise ValueError(
                f"{model.__name__}.event_type must look like '<context>.<EventName>.v<N>', "
                f"got {name!r}"
            )
        known = self._models.get(name)
        if known is not None and known is not model:
            raise ValueError(f"event type {name!r} is already registered to {known.__name__}")
        self._models[name] = model
        return model

    def register_upcaster(self, old_type: str, new_type: str, upcast: Upcaster) -> None:
        """Events stored as `old_type` load as `new_type` after `upcast` rewrites their data."""
        if old_type in self._models:
            raise ValueError(f"{old_type!r} is a live event type; retire it before upcasting")
        self._upcasters[old_type] = (new_type, upcast)

    def model_for(self, event_type: str) -> type[DomainEvent]:
        try:
            return self._models[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def knows(self, event_type: str) -> bool:
        return event_type in self._models or event_type in self._upcasters

    def decode(self, event_type: str, data: Mapping[str, Any]) -> DomainEvent:
        """Validate stored or received data into its (current) event model."""
        current_type, current = event_type, dict(data)
        seen = set()
        while current_type in self._upcasters:
            if current_type in seen:
                raise ValueError(f"upcaster cycle at {current_type!r}")
            seen.add(current_type)
            current_type, upcast = self._upcasters[current_type]
            current = upcast(current)
        return self.model_for(current_type).model_validate(current)

    def event_types(self) -> list[str]:
        return sorted(self._models)


#: The process-wide registry every service registers its events in.
registry = EventRegistry()


def event(model: E) -> E:
    """Class decorator: register an event model in the process-wide registry."""
    return registry.register(model)
