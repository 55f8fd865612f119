"""The command handlers on the in-memory event store: replicas with stale caches, retries,
idempotency, tenants, first-contact resolution."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contactcenter.contracts.errors import (
    ConcurrencyConflict,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from contactcenter.eventstore import InMemoryEventStore
from contactcenter.interactions.application import InteractionsApplication
from contactcenter.interactions.domain import (
    AddNote,
    Channel,
    Connect,
    CreateInteraction,
    Hold,
    InteractionState,
    PreviousContact,
    QueueTarget,
    Resume,
)

TENANT = "t-1"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def replicas(count: int = 2) -> list[InteractionsApplication]:
    """Applications sharing one store, like replicas of the service sharing one database."""
    store = InMemoryEventStore()
    clock = Clock()
    return [InteractionsApplication(store, clock=clock) for _ in range(count)]


async def create(app: InteractionsApplication, iid: str = "i-1", **fields: object) -> None:
    await app.execute(
        TENANT,
        iid,
        CreateInteraction(interaction_id=iid, channel=Channel.VOICE, agent_id="a-1", **fields),  # type: ignore[arg-type]
        request_id=f"create-{iid}",
        new=True,
    )


async def test_a_stale_cache_costs_a_retry_never_a_wrong_answer() -> None:
    a, b = replicas()
    await create(a)
    await a.execute(TENANT, "i-1", Connect(), request_id="r-1")  # a caches CONNECTED
    await b.execute(TENANT, "i-1", Hold(), request_id="r-2")  # the store moves to ON_HOLD
    # a still believes CONNECTED: Resume would be refused there; it is decided again on
    # the stored state instead, and succeeds.
    resumed = await a.execute(TENANT, "i-1", Resume(), request_id="r-3")
    assert resumed.state is InteractionState.CONNECTED and resumed.version == 5
    # And a command that fits the stale state conflicts on append, then is decided again.
    await b.execute(TENANT, "i-1", Hold(), request_id="r-4")
    refused = a.execute(TENANT, "i-1", Hold(), request_id="r-5")
    with pytest.raises(IllegalTransition) as error:
        await refused
    assert error.value.current_state == "on_hold"
    assert (await a.get(TENANT, "i-1")).version == 6


async def test_retries_return_the_first_outcome() -> None:
    (app,) = replicas(1)
    await create(app)
    await app.execute(TENANT, "i-1", Connect(), request_id="r-1")
    first = await app.execute(TENANT, "i-1", Hold(), request_id="hold")
    await app.execute(TENANT, "i-1", Resume(), request_id="resume")
    again = await app.execute(TENANT, "i-1", Hold(), request_id="hold")
    assert again.replayed and (again.state, again.version) == (first.state, first.version)
    assert (await app.get(TENANT, "i-1")).state is InteractionState.CONNECTED

    # A retry gets a new generated note id: still the same request, answered the first way.
    def found(state: object, events: Sequence[object]) -> dict[str, str]:
        return {"note_id": events[0].note_id}  # type: ignore[attr-defined]

    note = AddNote(note_id="n-1", author_id="s", text="hello")
    retried = AddNote(note_id="n-2", author_id="s", text="hello")
    one = await app.execute(TENANT, "i-1", note, request_id="note", extras=found)
    two = await app.execute(TENANT, "i-1", retried, request_id="note", extras=found)
    assert two.replayed and two.extras == one.extras == {"note_id": "n-1"}
    assert len((await app.get(TENANT, "i-1")).notes) == 1
    other = AddNote(note_id="n-3", author_id="s", text="another text")
    with pytest.raises(ValidationFailed):
        await app.execute(TENANT, "i-1", other, request_id="note")


async def test_a_real_race_is_retried_once_then_aborted() -> None:
    (app,) = replicas(1)
    await create(app)
    store = app.store
    append = store.append
    calls = 0

    async def always_losing(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        raise ConcurrencyConflict("interaction/t-1/i-1", 2, 3)

    store.append = always_losing  # type: ignore[method-assign]
    with pytest.raises(ConcurrencyConflict):
        await app.execute(TENANT, "i-1", Connect(), request_id="r")
    # The cached attempt, then a fresh one and its single retry.
    assert calls == 3
    store.append = append  # type: ignore[method-assign]


async def test_other_tenants_see_nothing() -> None:
    (app,) = replicas(1)
    await create(app)
    with pytest.raises(NotFound):
        await app.get("t-2", "i-1")
    with pytest.raises(NotFound):
        await app.execute("t-2", "i-1", Connect(), request_id="r")


class Earlier:
    def __init__(self, contacts: Sequence[PreviousContact]) -> None:
        self.contacts = contacts

    async def previous_contacts(
        self, tenant_id: str, profile_id: str, *, since: datetime, until: datetime
    ) -> Sequence[PreviousContact]:
        return [c for c in self.contacts if since <= c.created_at < until]


async def test_a_new_contact_of_a_recent_customer_is_marked_a_repeat() -> None:
    store = InMemoryEventStore()
    earlier = Earlier(
        [
            PreviousContact(interaction_id="old", created_at=T0 - timedelta(days=8)),
            PreviousContact(interaction_id="recent", created_at=T0 - timedelta(days=2)),
        ]
    )
    app = InteractionsApplication(store, previous_contacts=earlier, clock=lambda: T0)
    outcome = await app.execute(
        TENANT,
        "i-2",
        CreateInteraction(
            interaction_id="i-2",
            channel=Channel.CHAT,
            customer_profile_id="p-1",
            queue=QueueTarget(queue_id="q"),
        ),
        request_id="c",
        new=True,
    )
    assert outcome.version == 3  # created, queued, marked repeat: one append
    state = await app.get(TENANT, "i-2")
    assert state.repeat is not None and state.repeat.repeat_of_interaction_id == "recent"
