"""Read models the profiles service builds from other services' events."""

from contactcenter.profiles.projections.history import INTERACTIONS_TOPIC, HistoryProjection

__all__ = ["INTERACTIONS_TOPIC", "HistoryProjection"]
