"""Adapters of the reporting service: inbound readers, Kafka consumer, gRPC, HTTP."""
