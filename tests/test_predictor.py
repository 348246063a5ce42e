from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archlab.measurement.blocks import ContextTiming, block_infos
from archlab.measurement.fast_macs import count_macs_with_blocks
from archlab.predict.predictor import MIN_SAMPLES, LatencyPredictor
from archlab.predict.profile import BlockEntry, Calibration, DeviceProfile, current_setup
from archlab.space import load_space


@pytest.fixture
def tiny_model(tiny_space_path: Path) -> torch.nn.Module:
    space = load_space(tiny_space_path)
    torch.manual_seed(0)
    return space.family.build(space.to_cfg(space.default())).eval()


def _profile_for(model: torch.nn.Module, path: Path, skip: int = 0) -> dict[str, float]:
    """A profile of every block of ``model`` but the first ``skip`` (0.1 ms + 1 ms per 1M MACs)."""
    infos = block_infos(model, torch.randn(1, 3, 64, 64))
    entries = {}
    for i, b in enumerate(infos):
        macs = 1_000_000 * (i + 1)
        if i >= skip:
            entries[b.key] = BlockEntry(b.kind, 0.1 + macs / 1e6, macs, 1)
    DeviceProfile(current_setup(1, "eager", 1), "tiny", 64, entries, Calibration(2.0, 1.0, 3)).save(
        path
    )
    return {k: e.ms for k, e in entries.items()}


def test_prediction_is_the_calibrated_sum_of_the_table(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "cpu.json"
    table = _profile_for(tiny_model, path)
    keys = [b.key for b in block_infos(tiny_model, torch.randn(1, 3, 64, 64))]
    pred = LatencyPredictor(path).predict(tiny_model, 64)
    assert pred.blocks_ms == pytest.approx(sum(table[k] for k in keys))
    assert pred.latency_ms == pytest.approx(2.0 * pred.blocks_ms + 1.0)
    assert pred.measured_on_demand == 0 and pred.estimated == 0 and not pred.flagged


def test_missing_blocks_are_estimated_from_macs_and_flagged(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "cpu.json"
    _profile_for(tiny_model, path, skip=1)
    predictor = LatencyPredictor(path, on_demand=False)
    pred = predictor.predict(tiny_model, 64)
    assert pred.estimated == 1 and pred.flagged
    assert predictor.estimate_block("NeverSeen", 2_000_000) == pytest.approx(2.1, rel=1e-6)


def test_missing_blocks_are_measured_on_demand_and_saved(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "cpu.json"
    _profile_for(tiny_model, path, skip=2)
    before = len(DeviceProfile.load(path).entries)
    pred = LatencyPredictor(path, runs=2).predict(tiny_model, 64)
    assert pred.measured_on_demand >= 1 and pred.estimated == 0
    saved = DeviceProfile.load(path).entries
    assert len(saved) == before + pred.measured_on_demand
    assert {e.source for e in saved.values()} == {"profile", "on-demand"}


def test_a_profile_from_another_machine_estimates_instead_of_measuring(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "cpu.json"
    _profile_for(tiny_model, path, skip=1)
    profile = DeviceProfile.load(path)
    profile.setup["cpu"] = "Another CPU"
    profile.save(path)
    predictor = LatencyPredictor(path)
    assert not predictor.on_demand and predictor.mismatches
    assert predictor.predict(tiny_model, 64).estimated == 1


def test_blocks_measured_on_demand_are_rescaled_to_the_table_time_base(
    tiny_model: torch.nn.Module, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The machine ran at half the table's speed: known blocks took 2× their table time, so a
    missing block's measured time is halved before it enters the table."""
    path = tmp_path / "cpu.json"
    table = _profile_for(tiny_model, path, skip=1)
    infos = block_infos(tiny_model, torch.randn(1, 3, 64, 64))
    slow = {b.name: 2 * table[b.key] for b in infos[1:]}
    slow[infos[0].name] = 8.0

    def fake_timing(model: torch.nn.Module, x: torch.Tensor, names: list[str], **_: object):
        assert set(names) == {b.name for b in infos}  # every block is timed, not only the missing
        return ContextTiming(sum(slow.values()), slow, 4)

    monkeypatch.setattr("archlab.predict.predictor.time_in_context", fake_timing)
    pred = LatencyPredictor(path, save=False).predict(tiny_model, 64)
    assert pred.measured_on_demand == 1
    assert pred.blocks_ms == pytest.approx(sum(table[b.key] for b in infos[1:]) + 4.0)


def test_without_a_count_missing_blocks_are_estimated_by_the_cost_model_as_in_a_search(
    tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    """``predict`` without a count makes the fast count itself: a missing block is estimated
    from its op and byte figures (the cost model), the same figure a search gets by passing its
    count, not from the line in MACs alone."""
    counted = count_macs_with_blocks(tiny_model, 64)
    first, known = counted.blocks[0], counted.blocks[1:]

    def law_ms(ops: int, written: int) -> float:  # no MAC term: the MAC line cannot fit it
        return 0.05 + 0.01 * ops + written / 1e7

    entries = {}
    for b in known:
        f = counted.features(b.name)
        entries[b.key] = BlockEntry(
            b.kind, law_ms(f.ops, f.bytes), f.macs, 1, ops=f.ops, bytes=f.bytes
        )
    for i in range(MIN_SAMPLES):  # enough timed blocks with features for the model to be fitted
        ops, written, macs = 10 + 7 * i, 200_000 * (i % 3 + 1), 5_000_000 * (MIN_SAMPLES - i)
        entries[f"Synthetic:{i}@-"] = BlockEntry(
            "Synthetic", law_ms(ops, written), macs, 1, ops=ops, bytes=written
        )
    path = tmp_path / "cpu.json"
    DeviceProfile(current_setup(1, "eager", 1), "tiny", 64, entries, Calibration()).save(path)
    predictor = LatencyPredictor(path, on_demand=False, save=False)

    pred = predictor.predict(tiny_model, 64)
    assert pred.estimated == 1
    assert pred.blocks_ms == pytest.approx(predictor.predict(tiny_model, 64, counted).blocks_ms)
    estimate = pred.blocks_ms - sum(entries[b.key].ms for b in known)
    features = counted.features(first.name)
    assert estimate == pytest.approx(predictor.estimate_block(first.kind, features))
    assert estimate == pytest.approx(law_ms(features.ops, features.bytes), rel=0.05)
    assert estimate != pytest.approx(predictor.estimate_block(first.kind, features.macs), rel=0.05)
