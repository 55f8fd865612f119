"""Application layer: the wallboard change feed and the configuration commands."""
