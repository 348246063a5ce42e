"""How well does the block cost model estimate blocks a profile has not timed?

For each device profile given (``archlab profile-device``; entries must record op and byte
counts), five-fold cross-validation over its timed blocks: each fold is estimated by a model fitted
on the others, both with the cost model (:mod:`archlab.predict.cost_model`) and with the line in
MACs alone that older profiles fall back to. Printed: median |error| and the share within ±10%, per
model and per block class. Then, per architecture: each of the profile's calibration models (its
anchors) is rebuilt and its blocks estimated by a cost model fitted without any of them, and the
estimated sum is compared with the timed sum (:func:`archlab.predict.cost_model.model_out_errors`):
how well the cost model does on an architecture none of whose blocks were timed, which is what a
search asks of it. Reads files and builds models: no timing, any machine.

Run: ``.venv/bin/python bench/cost_model_cv.py studies/profiles/plgvit.json [more.json ...]``.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch

from archlab.measurement.blocks import block_infos
from archlab.models import build_model
from archlab.predict.cost_model import Sample, class_kind, cross_validated_errors, model_out_errors
from archlab.predict.predictor import _line
from archlab.predict.profile import DeviceProfile

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
        by_key = profile.cost_model_samples_by_key()
        samples = list(by_key.values())
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
        _print_model_out(profile, by_key)


def _print_model_out(profile: DeviceProfile, samples: dict[str, Sample]) -> None:
    """Leave-one-model-out errors of the block sums of the profile's calibration models."""
    if not profile.anchors:
        print("  per architecture: the profile has no anchors (an older file)")
        return
    x = torch.randn(profile.setup["batch"], 3, profile.resolution, profile.resolution)
    models = []
    for anchor in profile.anchors:
        torch.manual_seed(0)
        models.append([info.key for info in block_infos(build_model(anchor.config), x)])
    errors = model_out_errors(samples, models)
    usable = [e for e in errors if e is not None]
    skipped = (
        f" ({len(errors) - len(usable)} with untimed blocks left out)" if None in errors else ""
    )
    print(
        f"  per architecture, leave one model out, {len(usable)} models{skipped}: "
        f"{_summary(usable)}"
    )


if __name__ == "__main__":
    main()
