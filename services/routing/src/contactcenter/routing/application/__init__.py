"""Command handling around the pure engine: one engine per tenant, its events in the tenant's
stream, one decision at a time per tenant, offers fanned out to the agents' streams."""

from contactcenter.routing.application.fanout import OfferFanout, StoreOfferFeed
from contactcenter.routing.application.service import Executed, ReplayReport, RoutingApplication

__all__ = ["Executed", "OfferFanout", "ReplayReport", "RoutingApplication", "StoreOfferFeed"]
