"""The bridge between each service's event store and Kafka: the outbox relay publishes what
was appended; the consumer runner applies what was published, exactly once in effect."""

from contactcenter.eventbus.consumer import PartitionAware, Projection, subscribe_projection
from contactcenter.eventbus.relay import OutboxRelay, envelope_of

__all__ = ["OutboxRelay", "PartitionAware", "Projection", "envelope_of", "subscribe_projection"]
