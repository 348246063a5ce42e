"""How well does the block cost model estimate blocks a profile has not timed?

For each device profile given (``archlab profile-device``; entries must record op and byte
counts), five-fold cross-validation over its timed blocks: each fold is estimated by a model fitted
on the others, both with the cost model (:mod:`archlab.cost_model`) and with the line in MACs alone
that older profiles fall back to. Printed: median |error| and the share within ±10%, per model and
per block class. Reads files only: no timing, any machine.

Run: ``.venv/bin/python bench/cost_model_cv.py studies/profiles/plgvit.json [more.json ...]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

from archlab.cost_model import Sample, class_kind, cross_validated_errors
from archlab.predictor import _line
from archlab.profile import DeviceProfile

FOLDS = 5


def mac_line_errors(samples: Sequence[Sample], folds: int = FOLDS) -> list[float]:
    """As :func:`cross_validated_errors`, for the per-class line in MACs (all blocks: fallback)."""
    errors: list[float] = []
    for fold in range(folds):
        train = [s for i, s in enumerate(samples) if i % folds != fold]
        test = [s for i, s in enumerate(samples) if i % folds == fold]
        by_class: dict[str, list[tuple[int, float]]] = {}
        for label, f, ms in train:  # the predictor's MAC line is per class, at any shape
            by_class.setdefault(class_kind(label), []).append((f.macs, ms))
        rates = {k: _line(v) for k, v in by_class.items()}
        rates["*"] = _line([p for v in by_class.values() for p in v])
        for label, f, ms in test:
            intercept, per_mac = rates.get(class_kind(label), rates["*"])
            errors.append(max(0.0, intercept + per_mac * f.macs) / ms - 1)
    return errors


def _summary(errors: Sequence[float]) -> str:
    if not errors:
        return "no blocks"
    median = 100 * statistics.median(abs(e) for e in errors)
    within = 100 * sum(abs(e) <= 0.10 for e in errors) / len(errors)
    return f"median |err| {median:5.1f}%, {within:3.0f}% within ±10%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", type=Path, nargs="+")
    args = parser.parse_args()
    for path in args.profiles:
        profile = DeviceProfile.load(path)
        samples = profile.cost_model_samples()
        print(f"{path} ({profile.space}): {len(samples)} of {len(profile.entries)} blocks usable")
        if len(samples) < FOLDS:
            continue
        # in fold order, so the classes line up with cross_validated_errors' output
        ordered = [s for fold in range(FOLDS) for i, s in enumerate(samples) if i % FOLDS == fold]
        cost = cross_validated_errors(samples, FOLDS)
        print(f"  cost model: {_summary(cost)}")
        print(f"  MAC line:   {_summary(mac_line_errors(samples))}")
        for kind in sorted({class_kind(k) for k, _, _ in samples}):
            mine = [e for (k, _, _), e in zip(ordered, cost) if class_kind(k) == kind]
            print(f"    {kind:<20} {len(mine):4d} blocks, cost model {_summary(mine)}")


if __name__ == "__main__":
    main()
