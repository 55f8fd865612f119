"""Adapters of the profiles service: gRPC, PostgreSQL tables, cryptography."""
