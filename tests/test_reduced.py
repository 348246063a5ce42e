from __future__ import annotations

import dataclasses

import pytest
import torch

from archlab.estimate.estimates import reduced_model
from archlab.estimate.reduced import reduce_cfg
from archlab.models import FAMILIES
from archlab.space import list_spaces, load_space


def test_plgvit_windows_shrink_with_the_input_and_fit_each_map() -> None:
    cfg = FAMILIES["plgvit"].presets["lw_plgvit_a"].cfg
    stages = list(cfg.stages)
    stages[0] = dataclasses.replace(stages[0], window=14, global_window=7)
    stages[3] = dataclasses.replace(stages[3], window=7, global_window=5)
    small = reduce_cfg("plgvit", dataclasses.replace(cfg, stages=tuple(stages)), 64, 224)
    assert (small.stages[0].window, small.stages[0].global_window) == (4, 2)  # 56 → 16 px map
    assert (small.stages[3].window, small.stages[3].global_window) == (2, 1)  # 7 → 2 px map
    assert [s.dim for s in small.stages] == [s.dim for s in cfg.stages]  # widths untouched


@pytest.mark.parametrize("pooled", [7, 14])
def test_sbcformer_pooled_grid_is_scaled_to_a_valid_size(pooled: int) -> None:
    cfg = dataclasses.replace(FAMILIES["sbcformer"].presets["sbcformer_xs"].cfg, pooled_size=pooled)
    small = reduce_cfg("sbcformer", cfg, 64, 224)
    assert small.design_resolution == 64 and small.pooled_size == {7: 2, 14: 4}[pooled]


def test_same_resolution_changes_nothing() -> None:
    cfg = FAMILIES["plgvit"].presets["lw_plgvit_a"].cfg
    assert reduce_cfg("plgvit", cfg, 224, 224) == cfg


def test_arch_that_cannot_run_small_is_explained() -> None:
    cfg = FAMILIES["plgvit"].presets["lw_plgvit_a"].cfg
    with pytest.raises(ValueError, match="cannot run at 48 px"):
        reduce_cfg("plgvit", cfg, 48, 224)


@pytest.mark.parametrize("name", list_spaces())
def test_every_shipped_space_runs_reduced_to_64px(name: str) -> None:
    space = load_space(name)
    for seed in range(2):
        model = reduced_model(space, space.sample(seed), 64, num_classes=10).eval()
        with torch.inference_mode():
            out = model(torch.randn(2, 3, 64, 64))
        assert out.shape == (2, 10) and torch.isfinite(out).all()
