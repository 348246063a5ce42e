"""Estimate a block's in-context time from what it computes, for blocks a profile has not timed.

A device profile times the blocks of a few dozen sampled models, but a design space holds far more
distinct blocks than that (PLG-ViT's stage alone has thousands of configurations). nn-Meter
(Zhang et al., MobiSys 2021) predicts unseen kernels with models fitted per kernel type on their
configuration; we fit, per block class, a line in three costs that the MAC-counting pass already
sees (:class:`archlab.measurement.fast_macs.BlockCount`):

* MACs (arithmetic),
* aten ops dispatched (a fixed cost per op on a CPU: dispatch, kernel launch, small-tensor
  overheads; it dominates small blocks),
* bytes the ops wrote (memory traffic: reshapes, copies, element-wise ops of large activations),
* attention scores (query-key pairs) of fused attention: ``scaled_dot_product_attention`` never
  writes its score matrix, yet scales, masks and exponentiates every score; with narrow heads
  that costs more than the two matmuls' MACs (window 14 against window 7, in PLG-ViT),

plus a constant per block call. The coefficients are non-negative (a cost cannot speed a block up)
and fitted by least squares on relative errors, so small blocks weigh as much as large ones.

Classes nest: a block is estimated by the fit over blocks of its class **at its input's shape**
(:func:`block_class`) when the table has :data:`MIN_PER_CLASS` of those, else of its class on
maps of its input's size (any channels), else of its class, else by all blocks. A block's rate
per MAC, op and byte changes with the size of the maps it works on (the same attention block at
56×56 and at 7×7 tokens); nn-Meter likewise fits its kernel predictors on input sizes.
For the shape level, five-fold cross-validation over the timed blocks of two sets of profiles
(``bench/cost_model_cv.py``) took the median block error of ``hybrid`` from 12.1% and 11.5% to
10.3% and 9.7%, of ``mobileformer`` from 12.4% and 11.1% to 11.9% and 10.1%, and left the other
spaces unchanged (too few blocks per shape to fit apart). Attention scores, in the same
cross-validation on one set of profiles, took the median error of PLG-ViT's layers from 8.9% to
5.3%, of ``mobileformer``'s blocks from 12.1% to 7.6% and of ``sbcformer``'s from 4.1% to 3.7%.
The map-size level (a class's blocks at 56×56 ran 7–12% above their class's fit in two spaces)
then took the median block error of every space down on both sets of profiles: 6.3/7.2% → 5.1/5.5%
(``plgvit``), 10.7/8.7% → 9.5/7.8% (``hybrid``), 9.0/7.7% → 7.3/6.4% (``mobileformer``),
7.1/7.8% → 2.8/5.2% (``sbcformer``) and 7.7/7.0% → 5.0/4.1% (``parc``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from archlab.measurement.blocks import BlockFeatures

__all__ = [
    "MIN_PER_CLASS",
    "CostModel",
    "block_class",
    "class_kind",
    "cross_validated_errors",
    "model_out_errors",
]

MIN_PER_CLASS = 12  # five coefficients need a margin of examples to be worth a class of their own


Sample = tuple[str, BlockFeatures, float]  # (block class, features, milliseconds)


def block_class(kind: str, shape: str = "") -> str:
    """The finest class a block is fitted in: ``Kind@shape`` (its class at its input's shape)."""
    return f"{kind}@{shape}" if shape else kind


def class_kind(label: str) -> str:
    """The block class of a label made by :func:`block_class` (``Kind@shape`` → ``Kind``)."""
    return label.partition("@")[0]


def _nested(label: str) -> list[str]:
    """The classes of a block, finest first: ``Kind@shape``, then ``Kind@N×*×H×W`` (its class on
    maps of its input's size, any channels; 4-D inputs only), then ``Kind``."""
    kind, _, shape = label.partition("@")
    if not shape:
        return [label]
    dims = shape.split("x")
    if len(dims) == 4:
        return [label, f"{kind}@{dims[0]}x*x{dims[2]}x{dims[3]}", kind]
    return [label, kind]


def _fit(samples: Sequence[Sample]) -> np.ndarray:
    features = np.stack([f.vector() for _, f, _ in samples])
    ms = np.array([t for _, _, t in samples])
    weights = 1.0 / np.maximum(ms, 1e-3)  # relative errors
    coefficients, _ = nnls(features * weights[:, None], ms * weights)
    return coefficients


@dataclass(frozen=True)
class CostModel:
    """``ms ≈ a·MMACs + b·ops + c·MB written + d·M scores + e`` per block class (a–e ≥ 0)."""

    # block class (Kind@shape or Kind) → (a, b, c, d, e); "*" fitted on all blocks
    coefficients: dict[str, np.ndarray]

    @classmethod
    def fit(cls, samples: Sequence[Sample], min_per_class: int = MIN_PER_CLASS) -> CostModel:
        """Fit on timed blocks (their classes as :func:`block_class` gives them, or plain).

        Raises:
            ValueError: no samples.
        """
        if not samples:
            raise ValueError("a cost model needs at least one timed block")
        by_class: dict[str, list[Sample]] = {}
        for sample in samples:
            for label in _nested(sample[0]):
                by_class.setdefault(label, []).append(sample)
        coefficients = {"*": _fit(samples)}
        for kind, own in by_class.items():
            if len(own) >= min_per_class:
                coefficients[kind] = _fit(own)
        return cls(coefficients)

    def predict(self, kind: str, features: BlockFeatures) -> float:
        """Estimated in-context milliseconds of a block of class ``kind`` (finest fit first)."""
        label = next((c for c in _nested(kind) if c in self.coefficients), "*")
        return float(features.vector() @ self.coefficients[label])


def cross_validated_errors(samples: Sequence[Sample], folds: int = 5) -> list[float]:
    """Relative errors (estimate / timed − 1) of each sample, from a model fitted without it.

    Samples are dealt to ``folds`` folds in turn; each fold is estimated by a model fitted on the
    others. This is how well the model does on blocks the profile has not timed.
    """
    errors: list[float] = []
    for fold in range(folds):
        train = [s for i, s in enumerate(samples) if i % folds != fold]
        test = [s for i, s in enumerate(samples) if i % folds == fold]
        if not train or not test:
            continue
        model = CostModel.fit(train)
        errors += [model.predict(kind, f) / ms - 1 for kind, f, ms in test]
    return errors


def model_out_errors(
    samples: Mapping[str, Sample], models: Sequence[Sequence[str]]
) -> list[float | None]:
    """Per model, the relative error of its estimated block sum against its timed sum, from a
    model fitted without any of its blocks (leave one model out).

    Block errors of one architecture are not independent: its global knobs (token count, widths)
    shape every block it has, so a class fit can be off for all of them at once. This is how
    well the cost model does on a whole architecture none of whose blocks were timed.

    Args:
        samples: timed blocks by key.
        models: each model's block keys, one per block call, in any order.

    Returns:
        One error per model (estimate / timed − 1); None where a block of the model has no
        sample, or no block is left to fit on.
    """
    errors: list[float | None] = []
    for keys in models:
        own = set(keys)
        rest = [sample for key, sample in samples.items() if key not in own]
        if not keys or not own <= samples.keys() or not rest:
            errors.append(None)
            continue
        model = CostModel.fit(rest)
        timed = sum(samples[key][2] for key in keys)
        estimated = sum(model.predict(samples[key][0], samples[key][1]) for key in keys)
        errors.append(estimated / timed - 1)
    return errors
