"""Latency prediction from a device profile: look each block up, sum, calibrate.

A candidate's blocks are found with one forward pass
(:func:`archlab.measurement.blocks.block_infos`).
Blocks in
the table contribute their in-context time. For a block the table lacks:

* on the machine and setup the profile was made on, it is **measured on demand**: the candidate runs
  a few hooked forward passes, the missing blocks are timed in context, rescaled by how fast the
  table's known blocks ran in the same passes (the machine's speed drifts), added to the table and
  saved to the profile file, so later candidates find them;
* elsewhere, or when asked to (``on_demand=False``), it is **estimated** by a cost model fitted on
  the table (:mod:`archlab.predict.cost_model`: MACs, aten ops, bytes written and attention scores,
  per block class, map size and input shape), and the prediction is flagged. Entries of older
  profiles have no op and byte figures: then the estimate is the table's fitted line in MACs for
  blocks of the same class (``ms ≈ a + b · MACs``).

The sum goes through the profile's calibration. Use predictions to rank and pre-filter; re-measure
the final candidates whole (``archlab search --latency predicted`` does this for the Pareto front).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archlab.measurement.blocks import (
    BlockFeatures,
    BlockInfo,
    block_infos,
    key_input_shape,
    time_in_context,
)
from archlab.measurement.fast_macs import BlockCount, UncountedOpError, count_macs_with_blocks
from archlab.measurement.flops import MacCount, count_macs
from archlab.predict.cost_model import CostModel, block_class
from archlab.predict.profile import DeviceProfile, block_entry

__all__ = ["LatencyPredictor", "Prediction"]


@dataclass(frozen=True)
class Prediction:
    """A predicted latency and how it was obtained."""

    latency_ms: float  # calibrated
    blocks_ms: float  # Σ of the blocks' table (or estimated) times
    blocks: int
    measured_on_demand: int  # blocks measured now and added to the table
    estimated: int  # blocks estimated from MACs (not measured on this setup)

    @property
    def flagged(self) -> bool:
        """True when part of the figure is an estimate rather than a measurement."""
        return self.estimated > 0


def _line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(intercept, ms per MAC) through (MACs, ms) points; a ratio through 0 if they barely vary."""
    macs = [float(m) for m, _ in points]
    ms = [t for _, t in points]
    if sum(macs) == 0:
        return statistics.median(ms), 0.0
    if len(points) < 3 or statistics.pvariance(macs) == 0:
        return 0.0, sum(ms) / sum(macs)
    mx, my = statistics.fmean(macs), statistics.fmean(ms)
    slope = sum((x - mx) * (y - my) for x, y in zip(macs, ms)) / sum((x - mx) ** 2 for x in macs)
    if slope <= 0:
        return 0.0, sum(ms) / sum(macs)
    return my - slope * mx, slope


def _count_with_blocks(model: nn.Module, resolution: int, batch: int) -> BlockCount | None:
    """The fast count with blocks and features (None: the model runs an op it cannot count)."""
    try:
        return count_macs_with_blocks(model, resolution, batch=batch)
    except UncountedOpError:
        return None


MIN_SAMPLES = 8  # timed blocks with features below which the cost model is not fitted


class LatencyPredictor:
    """Predict latencies of a space's candidates from a device profile.

    Args:
        path: the profile file (see ``archlab profile-device``).
        on_demand: measure missing blocks (True), estimate them (False), or decide by whether
            this process has the profile's setup (None, the default).
        runs: hooked passes for an on-demand measurement.
        save: write blocks measured on demand back to ``path``.

    Raises:
        ProfileError: the file is missing, malformed or of another format version.
    """

    def __init__(
        self, path: Path | str, *, on_demand: bool | None = None, runs: int = 8, save: bool = True
    ) -> None:
        self.path = Path(path)
        self.profile = DeviceProfile.load(self.path)
        self.mismatches = self.profile.mismatches()
        self.on_demand = not self.mismatches if on_demand is None else on_demand
        self.runs = runs
        self.save = save
        self._rates: dict[str, tuple[float, float]] | None = None
        self._cost_model: CostModel | None = None

    @property
    def setup(self) -> dict[str, object]:
        return self.profile.setup

    def _kind_rates(self) -> dict[str, tuple[float, float]]:
        if self._rates is None:
            by_kind: dict[str, list[tuple[int, float]]] = {}
            for entry in self.profile.entries.values():
                by_kind.setdefault(entry.kind, []).append((entry.macs, entry.ms))
            self._rates = {k: _line(v) for k, v in by_kind.items()}
            everything = [p for v in by_kind.values() for p in v]
            self._rates["*"] = _line(everything) if everything else (0.0, 0.0)
        return self._rates

    def cost_model(self) -> CostModel | None:
        """The cost model fitted on the table's entries that record features (None: too few)."""
        if self._cost_model is None:
            samples = self.profile.cost_model_samples()
            if len(samples) >= MIN_SAMPLES:
                self._cost_model = CostModel.fit(samples)
        return self._cost_model

    def estimate_block(self, kind: str, features: BlockFeatures | int, shape: str = "") -> float:
        """A block's time from its features with the cost model (at its input's ``shape``,
        see :func:`~archlab.measurement.blocks.key_input_shape`), or from its MACs alone (an int,
        or a table without features) with the fitted line of its class (or of all blocks)."""
        if isinstance(features, BlockFeatures):
            model = self.cost_model()
            if model is not None:
                return max(0.0, model.predict(block_class(kind, shape), features))
            features = features.macs
        rates = self._kind_rates()
        intercept, per_mac = rates.get(kind, rates["*"])
        return max(0.0, intercept + per_mac * features)

    def _measure(
        self,
        model: nn.Module,
        x: torch.Tensor,
        infos: list[BlockInfo],
        missing: list[BlockInfo],
        features: dict[str, BlockFeatures | int],
    ) -> None:
        """Time every block of ``model`` in context and add the missing ones to the table.

        The machine's speed drifts (by tens of percent over a minute on a VM), so a short sitting
        is rescaled to the table's time base: by Σ table / Σ measured over the blocks of this model
        that the table already has (when there are any).
        """
        threads = int(self.setup.get("threads", 1))  # type: ignore[call-overload]
        timing = time_in_context(
            model, x, [b.name for b in infos], runs=self.runs, warmup=1, threads=threads
        )
        known = [b for b in infos if b.key in self.profile.entries and b.name in timing.module_ms]
        seen = sum(timing.module_ms[b.name] for b in known)
        scale = sum(self.profile.entries[b.key].ms for b in known) / seen if seen > 0 else 1.0
        scale = min(max(scale, 0.5), 2.0)  # a wild ratio means too little overlap to trust it
        for b in missing:
            self.profile.entries[b.key] = block_entry(
                b.kind,
                scale * timing.module_ms.get(b.name, 0.0),
                features.get(b.name, 0),
                timing.runs,
                source="on-demand",
            )
        self._rates = self._cost_model = None
        if self.save:
            self.profile.merge_save(self.path)

    def predict(
        self, model: nn.Module, resolution: int, macs: MacCount | BlockCount | None = None
    ) -> Prediction:
        """Predict the latency of ``model`` at ``resolution`` (see the module docstring).

        Args:
            macs: the model's count at batch 1, if already made: a ``MacCount`` saves a count when
                blocks are missing; a ``BlockCount`` also saves the pass that finds the blocks.
                Without it, the fast count finds the blocks and their op and byte figures, so
                that missing blocks are estimated by the cost model, as in a search.
        """
        model.eval()
        batch = int(self.setup.get("batch", 1))  # type: ignore[call-overload]
        x = torch.randn(batch, 3, resolution, resolution)
        usable = macs if batch == 1 else None
        if usable is None:
            usable = _count_with_blocks(model, resolution, batch)
        features: dict[str, BlockFeatures | int] = {}
        if isinstance(usable, BlockCount):
            infos = usable.blocks
            features = {b.name: usable.features(b.name) for b in infos}
        else:
            infos = block_infos(model, x)
        missing = list({b.key: b for b in infos if b.key not in self.profile.entries}.values())
        if missing and not features:
            counted = usable if isinstance(usable, MacCount) else None
            by_module = (counted or count_macs(model, resolution, batch=batch)).by_module
            features = {b.name: by_module.get(b.name, 0) for b in infos}
        measured = estimated = 0
        if missing and self.on_demand:
            self._measure(model, x, infos, missing, features)
            measured = len(missing)
        total = 0.0
        for b in infos:
            entry = self.profile.entries.get(b.key)
            if entry is not None:
                total += entry.ms
            else:
                total += self.estimate_block(
                    b.kind, features.get(b.name, 0), key_input_shape(b.key)
                )
                estimated += 1
        return Prediction(
            self.profile.calibration.apply(total), total, len(infos), measured, estimated
        )
