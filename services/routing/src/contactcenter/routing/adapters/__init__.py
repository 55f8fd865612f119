"""Adapters of the routing service: the gRPC API."""
