"""Test support: pytest fixtures for the real PostgreSQL and Kafka-compatible broker."""
