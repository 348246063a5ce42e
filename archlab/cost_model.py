"""Estimate a block's in-context time from what it computes, for blocks a profile has not timed.

A device profile times the blocks of a few dozen sampled models, but a design space holds far more
distinct blocks than that (PLG-ViT's stage alone has thousands of configurations). nn-Meter
(Zhang et al., MobiSys 2021) predicts unseen kernels with models fitted per kernel type on their
configuration; we fit, per block class, a line in three costs that the MAC-counting pass already
sees (:class:`archlab.fast_macs.BlockCount`):

* MACs (arithmetic),
* aten ops dispatched (a fixed cost per op on a CPU: dispatch, kernel launch, small-tensor
  overheads; it dominates small blocks),
* bytes the ops wrote (memory traffic: reshapes, copies, element-wise ops of large activations),

plus a constant per block call. The coefficients are non-negative (a cost cannot speed a block up)
and fitted by least squares on relative errors, so small blocks weigh as much as large ones. A
class with fewer than :data:`MIN_PER_CLASS` timed blocks uses the fit over all blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

__all__ = ["MIN_PER_CLASS", "BlockFeatures", "CostModel", "cross_validated_errors"]

MIN_PER_CLASS = 12  # four coefficients need a margin of examples to be worth a class of their own


@dataclass(frozen=True)
class BlockFeatures:
    """What one block computes in a forward pass (all its calls together)."""

    macs: int
    ops: int  # aten ops dispatched
    bytes: int  # bytes of the ops' results

    def vector(self) -> np.ndarray:
        """Features in units that keep the least-squares problem well conditioned."""
        return np.array([self.macs / 1e6, float(self.ops), self.bytes / 1e6, 1.0])


Sample = tuple[str, BlockFeatures, float]  # (block class, features, milliseconds)


def _fit(samples: Sequence[Sample]) -> np.ndarray:
    features = np.stack([f.vector() for _, f, _ in samples])
    ms = np.array([t for _, _, t in samples])
    weights = 1.0 / np.maximum(ms, 1e-3)  # relative errors
    coefficients, _ = nnls(features * weights[:, None], ms * weights)
    return coefficients


@dataclass(frozen=True)
class CostModel:
    """``ms ≈ a·MMACs + b·ops + c·MB written + d`` per block class (non-negative a–d)."""

    coefficients: dict[str, np.ndarray]  # block class → (a, b, c, d); "*" fitted on all blocks

    @classmethod
    def fit(cls, samples: Sequence[Sample], min_per_class: int = MIN_PER_CLASS) -> CostModel:
        """Fit on timed blocks.

        Raises:
            ValueError: no samples.
        """
        if not samples:
            raise ValueError("a cost model needs at least one timed block")
        by_class: dict[str, list[Sample]] = {}
        for sample in samples:
            by_class.setdefault(sample[0], []).append(sample)
        coefficients = {"*": _fit(samples)}
        for kind, own in by_class.items():
            if len(own) >= min_per_class:
                coefficients[kind] = _fit(own)
        return cls(coefficients)

    def predict(self, kind: str, features: BlockFeatures) -> float:
        """Estimated in-context milliseconds of a block of class ``kind``."""
        coefficients = self.coefficients.get(kind, self.coefficients["*"])
        return float(features.vector() @ coefficients)


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
