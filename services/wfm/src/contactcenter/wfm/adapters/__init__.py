"""Adapters of the WFM service: gRPC API, reporting client, routing-event reader."""
