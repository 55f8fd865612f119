class InfraError(RuntimeError):
    """A piece of local infrastructure could not start; the message says why and what to do."""
