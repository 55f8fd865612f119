"""Adapters: the gRPC API, the inbound Kafka events, serialisation of the aggregate."""
