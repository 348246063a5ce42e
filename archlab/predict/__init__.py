"""Latency prediction: device profiles, the block cost model, the predictor and the time base."""
