"""The Interaction aggregate as JSON (the list read model keeps it per interaction).

`basic=True` leaves out messages, notes and transcript (the BASIC view): what a list shows,
and all that folding further events needs (content events only append to those tuples).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from pydantic import TypeAdapter

from contactcenter.interactions.domain import Interaction

_ADAPTER: TypeAdapter[Interaction] = TypeAdapter(Interaction)


def dump_interaction(state: Interaction, *, basic: bool = True) -> str:
    plain = dataclasses.replace(
        state, attributes=dict(state.attributes), time_in_state=dict(state.time_in_state)
    )
    if basic:
        plain = dataclasses.replace(plain, messages=(), notes=(), transcript=())
    return _ADAPTER.dump_json(plain).decode()


def load_interaction(text: str | bytes) -> Interaction:
    state = _ADAPTER.validate_json(text)
    return dataclasses.replace(
        state,
        attributes=MappingProxyType(dict(state.attributes)),
        time_in_state=MappingProxyType(dict(state.time_in_state)),
    )
