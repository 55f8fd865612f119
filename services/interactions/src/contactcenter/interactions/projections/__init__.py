"""Read models of the interactions service and their upkeep."""

from contactcenter.interactions.projections.interaction_list import (
    Cursor,
    InteractionList,
    InteractionListProjection,
    ListFilter,
)

__all__ = ["Cursor", "InteractionList", "InteractionListProjection", "ListFilter"]
