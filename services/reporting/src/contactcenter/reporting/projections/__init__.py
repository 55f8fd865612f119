"""The reporting read models: the live projection and the rebuild."""
