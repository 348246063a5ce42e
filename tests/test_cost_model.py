"""The block cost model: exact on data it can represent, non-negative, per class with a fallback,
and used by the predictor for blocks the table lacks."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from archlab.layers.attention import attend
from archlab.measurement.fast_macs import count_macs_with_blocks
from archlab.predict.cost_model import (
    MIN_PER_CLASS,
    BlockFeatures,
    CostModel,
    block_class,
    cross_validated_errors,
    model_out_errors,
)
from archlab.predict.predictor import LatencyPredictor
from archlab.predict.profile import Calibration, DeviceProfile, block_entry, current_setup
from archlab.space import load_space

TRUE = np.array([0.02, 0.01, 0.3, 0.5, 0.05])  # ms per MMAC, op, MB written, M scores, call


def _ms(f: BlockFeatures, coefficients: np.ndarray = TRUE) -> float:
    return float(f.vector() @ coefficients)


def _random_features(rng: random.Random) -> BlockFeatures:
    scores = rng.choice([0, rng.randrange(1, 5_000_000)])  # half the blocks attend
    return BlockFeatures(
        rng.randrange(0, 200_000_000), rng.randrange(1, 300), rng.randrange(1, 10**7), scores
    )


def test_recovers_costs_it_can_represent() -> None:
    rng = random.Random(0)
    samples = [("Block", f, _ms(f)) for f in (_random_features(rng) for _ in range(40))]
    model = CostModel.fit(samples)
    assert model.coefficients["Block"] == pytest.approx(TRUE, rel=1e-6)
    unseen = _random_features(rng)
    assert model.predict("Block", unseen) == pytest.approx(_ms(unseen), rel=1e-6)
    assert max(abs(e) for e in cross_validated_errors(samples)) < 1e-6


def test_leaving_a_model_out_leaves_out_every_block_it_has() -> None:
    rng = random.Random(3)
    lawful = {
        f"b{i}": ("Block", f, _ms(f))
        for i, f in enumerate(_random_features(rng) for _ in range(40))
    }
    # a model whose blocks all run 1.5x the law: only a fit that saw them could predict them
    odd = {
        f"odd{i}": ("Block", f, 1.5 * _ms(f))
        for i, f in enumerate(_random_features(rng) for _ in range(3))
    }
    assert model_out_errors(lawful, [["b0", "b1", "b1"]]) == [pytest.approx(0.0, abs=1e-6)]
    errors = model_out_errors({**lawful, **odd}, [list(odd), ["b2", "missing"], []])
    assert errors[0] == pytest.approx(1 / 1.5 - 1, rel=1e-6)  # estimated by the law alone
    assert errors[1:] == [None, None]  # a block without a sample; no blocks


def test_coefficients_are_never_negative() -> None:
    # time falls with bytes here: a free fit would give bytes a negative cost
    rng = random.Random(1)
    samples = []
    for _ in range(30):
        f = _random_features(rng)
        samples.append(("Block", f, max(0.01, _ms(f, np.array([0.02, 0.01, -0.1, 0.5, 2.0])))))
    assert (CostModel.fit(samples).coefficients["Block"] >= 0).all()


def test_rare_classes_use_the_fit_over_all_blocks() -> None:
    rng = random.Random(2)
    common = [("Common", f, _ms(f)) for f in (_random_features(rng) for _ in range(MIN_PER_CLASS))]
    rare = [("Rare", f, 3 * _ms(f)) for f in (_random_features(rng) for _ in range(2))]
    model = CostModel.fit(common + rare)
    assert set(model.coefficients) == {"*", "Common"}
    f = _random_features(rng)
    assert model.predict("Rare", f) == pytest.approx(float(f.vector() @ model.coefficients["*"]))
    with pytest.raises(ValueError, match="at least one"):
        CostModel.fit([])


def test_a_class_at_one_input_shape_gets_its_own_fit_when_the_table_has_enough() -> None:
    """Blocks of one class run at another rate on large maps: with enough of them, blocks at
    that shape are fitted apart; a shape with too few falls back to its class, an unknown class
    to all blocks."""
    rng = random.Random(4)
    large = block_class("Block", "1x64x56x56")
    few = block_class("Block", "1x256x7x7")
    samples = [
        (large, f, 2 * _ms(f)) for f in (_random_features(rng) for _ in range(MIN_PER_CLASS))
    ]
    samples += [(few, f, _ms(f)) for f in (_random_features(rng) for _ in range(3))]
    model = CostModel.fit(samples)
    assert set(model.coefficients) == {"*", "Block", large, "Block@1x*x56x56"}
    f = _random_features(rng)
    assert model.predict(large, f) == pytest.approx(2 * _ms(f), rel=1e-6)
    assert model.predict(few, f) == pytest.approx(float(f.vector() @ model.coefficients["Block"]))
    assert model.predict("Block", f) == model.predict(few, f)
    assert model.predict(block_class("Other", "1x8"), f) == pytest.approx(
        float(f.vector() @ model.coefficients["*"])
    )


def test_blocks_on_maps_of_one_size_share_a_fit_whatever_their_channels() -> None:
    """Large maps at a handful of widths each: too few per shape, enough per map size."""
    rng = random.Random(6)
    widths = [16, 24, 32, 48]
    samples = [
        (block_class("Block", f"1x{widths[i % 4]}x56x56"), f, 2 * _ms(f))
        for i, f in enumerate(_random_features(rng) for _ in range(MIN_PER_CLASS))
    ]
    samples += [
        (block_class("Block", "1x64x7x7"), f, _ms(f))
        for f in (_random_features(rng) for _ in range(MIN_PER_CLASS))
    ]
    model = CostModel.fit(samples)
    assert set(model.coefficients) == {
        "*",
        "Block",
        "Block@1x*x56x56",
        "Block@1x64x7x7",
        "Block@1x*x7x7",
    }
    f = _random_features(rng)
    # a width the table never saw, on a 56×56 map
    assert model.predict(block_class("Block", "1x40x56x56"), f) == pytest.approx(2 * _ms(f))
    # token inputs (not N×C×H×W) have no map level
    assert model.predict(block_class("Block", "1x3136x64"), f) == model.predict("Block", f)


def test_the_counting_pass_gives_every_block_its_features(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    model = space.family.build(space.to_cfg(space.default())).eval()
    counted = count_macs_with_blocks(model, 64)
    features = [counted.features(b.name) for b in counted.blocks]
    assert sum(f.macs for f in features) <= counted.total
    # a block with MACs ran ops that wrote results; an Identity runs none
    assert all(f.ops >= 1 and f.bytes > 0 for f in features if f.macs)
    assert all(f.ops == 0 for b, f in zip(counted.blocks, features) if b.kind == "Identity")


class _Attends(nn.Module):
    """Window-free attention of ``tokens`` queries over ``keys`` keys, plus a projection."""

    def __init__(self, dim: int, heads: int, keys: int) -> None:
        super().__init__()
        self.heads, self.keys = heads, keys
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q = x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)
        kv = q[:, :, : self.keys]
        return self.proj(attend(q, kv, kv).transpose(1, 2).reshape(b, n, c))


class _TwoBlocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(_Attends(32, 4, 10), nn.Linear(32, 32), _Attends(32, 2, 49))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.blocks(image.flatten(2).transpose(1, 2)[..., :32])


def test_the_counting_pass_counts_the_scores_of_fused_attention() -> None:
    """Query-key pairs per head, by hand: 4 heads × 49 queries × 10 keys, then 2 × 49 × 49."""
    counted = count_macs_with_blocks(_TwoBlocks().eval(), 7, in_chans=32)
    scores = {b.name: counted.features(b.name).scores for b in counted.blocks}
    assert scores == {"blocks.0": 4 * 49 * 10, "blocks.1": 0, "blocks.2": 2 * 49 * 49}


def test_predictor_estimates_missing_blocks_with_the_cost_model(
    tiny_space_path: Path, tmp_path: Path
) -> None:
    """A table whose times follow the cost model: a block left out is estimated at its true cost."""
    space = load_space(tiny_space_path)
    rng = random.Random(3)
    entries, target = {}, None
    for _ in range(12):
        arch = space.sample(rng)
        try:
            model = space.family.build(space.to_cfg(arch)).eval()
        except ValueError:
            continue
        counted = count_macs_with_blocks(model, 64)
        for b in counted.blocks:
            f = counted.features(b.name)
            entries[b.key] = block_entry(b.kind, _ms(f), f, 1)
        target = (model, counted)
    assert target is not None
    model, counted = target
    left_out = counted.blocks[-1]
    del entries[left_out.key]
    path = tmp_path / "cpu.json"
    profile = DeviceProfile(current_setup(1, "eager", 1), "tiny", 64, entries, Calibration())
    profile.save(path)
    predictor = LatencyPredictor(path, on_demand=False)
    pred = predictor.predict(model, 64, counted)
    expected = sum(_ms(counted.features(b.name)) for b in counted.blocks)
    assert pred.estimated >= 1 and pred.flagged
    assert pred.latency_ms == pytest.approx(expected, rel=1e-3)
    # an older profile (no op/byte figures) falls back to the MAC line and still predicts
    for key, entry in profile.entries.items():
        profile.entries[key] = block_entry(entry.kind, entry.ms, entry.macs, 1)
    profile.save(path)
    old = LatencyPredictor(path, on_demand=False)
    assert old.cost_model() is None
    assert old.predict(model, 64, counted).latency_ms > 0


def test_a_table_with_older_entries_leaves_attention_scores_out_of_the_fit(
    tmp_path: Path,
) -> None:
    """Entries of an older file have no scores: fitting the feature on the newer entries alone
    would charge attention twice (the older entries' times include it at 0 scores)."""
    rng = random.Random(5)
    complete = {}
    for i in range(40):
        f = _random_features(rng)
        complete[f"Block:{i}@1x8"] = block_entry("Block", _ms(f), f, 1)
    mixed = {
        k: replace(e, scores=None) if i % 2 else e for i, (k, e) in enumerate(complete.items())
    }
    path = tmp_path / "cpu.json"
    setup = current_setup(1, "eager", 1)
    DeviceProfile(setup, "tiny", 64, mixed, Calibration()).save(path)
    reloaded = DeviceProfile.load(path).entries
    assert {k: e.scores for k, e in reloaded.items()} == {k: e.scores for k, e in mixed.items()}
    model = LatencyPredictor(path, on_demand=False).cost_model()
    assert model is not None and model.coefficients["Block"][3] == 0.0
    # with every entry's scores recorded, the fit recovers their cost
    DeviceProfile(setup, "tiny", 64, complete, Calibration()).save(path)
    model = LatencyPredictor(path, on_demand=False).cost_model()
    assert model is not None
    assert model.coefficients["Block"] == pytest.approx(TRUE, rel=1e-6)
