"""The mailbox aggregate: an address of a tenant, where its email is routed, and (without
credentials) the IMAP account the poller reads. Pure: fold events, decide commands."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from contactcenter.contracts.errors import FailedPrecondition, FieldViolation, ValidationFailed
from contactcenter.contracts.events import DomainEvent
from contactcenter.email.domain.events import MailboxRegistered, MailboxRoutingSet, Routing

_ADDRESS: Final = re.compile(r"^[a-z0-9.!#$%&'*/=?^_`{|}~-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_LANGUAGE: Final = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def normalize_address(address: str) -> str:
    return address.strip().lower()


def check_address(address: str, field: str = "address") -> str:
    a = normalize_address(address)
    if not a:
        raise ValidationFailed([FieldViolation(field, "is required")])
    if len(a) > 254 or not _ADDRESS.match(a) or "+" in a.split("@", 1)[0]:
        raise ValidationFailed([FieldViolation(field, "is not a plain mailbox address")])
    return a


def check_routing(routing: Routing, field: str = "routing") -> Routing:
    bad: list[FieldViolation] = []
    if routing.queue_id is not None and len(routing.queue_id) > 128:
        bad.append(FieldViolation(f"{field}.queue_id", "longer than 128 characters"))
    if not -1000 <= routing.priority <= 1000:
        bad.append(FieldViolation(f"{field}.priority", "must be between -1000 and 1000"))
    if routing.language is not None and not _LANGUAGE.match(routing.language):
        bad.append(FieldViolation(f"{field}.language", "is not a BCP 47 language tag"))
    if bad:
        raise ValidationFailed(bad)
    return routing


@dataclass(frozen=True, slots=True)
class MailboxState:
    address: str
    display_name: str | None = None
    routing: Routing = field(default_factory=Routing)
    imap_host: str | None = None
    imap_port: int | None = None
    imap_username: str | None = None
    imap_use_tls: bool = True
    imap_folder: str = "INBOX"
    version: int = 0


def evolve(state: MailboxState | None, event: DomainEvent) -> MailboxState | None:
    if isinstance(event, MailboxRegistered):
        return MailboxState(
            address=event.address,
            display_name=event.display_name,
            routing=event.routing,
            imap_host=event.imap_host,
            imap_port=event.imap_port,
            imap_username=event.imap_username,
            imap_use_tls=event.imap_use_tls,
            imap_folder=event.imap_folder,
            version=1 if state is None else state.version + 1,
        )
    if isinstance(event, MailboxRoutingSet) and state is not None:
        return replace(state, routing=event.routing, version=state.version + 1)
    return state


def fold(events: Iterable[DomainEvent]) -> MailboxState | None:
    state: MailboxState | None = None
    for e in events:
        state = evolve(state, e)
    return state


def decide_routing(
    state: MailboxState | None, tenant_id: str, routing: Routing
) -> list[DomainEvent]:
    if state is None:
        raise FailedPrecondition("mailbox is not registered", current_state="unregistered")
    check_routing(routing)
    if state.routing == routing:
        return []
    return [MailboxRoutingSet(tenant_id=tenant_id, address=state.address, routing=routing)]
