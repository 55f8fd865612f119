"""Crypto-shredding of the customer's personal data (see `domain/personal.py`).

Subject: the interaction (one data key each, in this schema's `subject_keys`); owners: every
customer profile the interaction was linked to. `ProfileErased` destroys the keys of every
interaction its profiles own, so their personal fields read as erased everywhere (event
store, read model, published events), and nothing personal is written for them afterwards.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from contactcenter.interactions.domain import Interaction, InteractionEvent
from contactcenter.interactions.domain.personal import PersonalFields, owners_of
from contactcenter.privacy import (
    Cipher,
    SubjectCipher,
    SubjectKeys,
    open_or_erased,
    seal_or_erased,
)


class Privacy:
    def __init__(
        self, keys: SubjectKeys, fields: PersonalFields | None = None, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.fields = fields or PersonalFields()
        # Writers' ciphers of recent interactions (sealing needs no round trip then). Never
        # used to read: a key destroyed meanwhile seals what nobody can open any more.
        self._writers: OrderedDict[tuple[str, str], SubjectCipher] = OrderedDict()
        self._cache_size = cache_size

    def _personal(self, events: Sequence[InteractionEvent]) -> bool:
        touched = False

        def probe(value: str | None) -> str | None:
            nonlocal touched
            touched = touched or bool(value)
            return value

        for e in events:
            self.fields.event(e, probe)
        return touched

    async def seal(
        self, tenant_id: str, state: Interaction | None, events: Sequence[InteractionEvent]
    ) -> list[InteractionEvent]:
        """`events` of one interaction with their personal fields sealed (and the profiles
        they link recorded as owners of its key first)."""
        if not events:
            return []
        owners = owners_of(state, events)
        known = {state.customer_profile_id} if state and state.customer_profile_id else set()
        personal = self._personal(events)
        if not personal and owners <= known:
            return list(events)
        subject = events[0].interaction_id
        cached = self._writers.get((tenant_id, subject)) if owners <= known else None
        if cached is not None:
            self._writers.move_to_end((tenant_id, subject))
            cipher: Cipher = cached
        else:
            cipher = await self.keys.for_writing(tenant_id, subject, owners)
            if isinstance(cipher, SubjectCipher) and self._cache_size:
                self._writers[(tenant_id, subject)] = cipher
                while len(self._writers) > self._cache_size:
                    self._writers.popitem(last=False)
        if not personal:
            return list(events)
        return [self.fields.event(e, lambda v: seal_or_erased(cipher, v)) for e in events]

    def forget(self, tenant_id: str, subjects: Sequence[str]) -> None:
        """Drop the cached writers' ciphers of `subjects` (their keys were destroyed)."""
        for subject in subjects:
            self._writers.pop((tenant_id, subject), None)

    async def _ciphers(self, tenant_id: str, ids: Sequence[str]) -> dict[str, Cipher]:
        return dict(await self.keys.for_reading(tenant_id, ids))

    async def open(self, tenant_id: str, state: Interaction) -> Interaction:
        return (await self.open_all(tenant_id, [state]))[0]

    async def open_all(self, tenant_id: str, states: Sequence[Interaction]) -> list[Interaction]:
        """The states with their personal fields readable, or `ERASED` where erased."""
        if not states:
            return []
        ciphers = await self._ciphers(tenant_id, [s.interaction_id for s in states])
        return [
            self.fields.interaction(s, lambda v, c=ciphers[s.interaction_id]: open_or_erased(c, v))
            for s in states
        ]

    async def open_event(self, tenant_id: str, event: InteractionEvent) -> InteractionEvent:
        if not self._personal([event]):
            return event
        cipher = (await self._ciphers(tenant_id, [event.interaction_id]))[event.interaction_id]
        return self.fields.event(event, lambda v: open_or_erased(cipher, v))
