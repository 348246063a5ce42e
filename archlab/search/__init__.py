"""The search: evaluating candidates, the Optuna loop, workers and the front's re-measurement."""
