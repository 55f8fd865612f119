"""Shared contracts: event base model, event registry, topic registry, generated gRPC stubs."""
