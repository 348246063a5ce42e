"""Accuracy estimates and the training they are scored against: data, proxies, short training."""
