"""A stored study: where it lives, its objectives and constraints, liveness of its trials."""
