"""Measurement of a built model: MACs and parameters, CPU latency, peak memory, backends.

Lowest of the subsystems above the models: it knows nothing of spaces, searches or studies.
"""
