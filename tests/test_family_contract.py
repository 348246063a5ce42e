"""The contract every registered model family meets, checked once for all of them.

Parametrised over ``archlab.models.FAMILIES`` and over every preset of every family, so a new
family gets these checks by being registered: its module (``archlab/models/<name>.py``), its space
file (``search_spaces/<name>.yaml``) and one registry entry. What differs between families comes
from the data on each :class:`~archlab.models.Preset` (``published``, ``params_m``, ``macs_g``,
``macs_reproducible``, ``resolution``), not from the family's name; the one exception is PLG-ViT's
looser parameter tolerance, which no Preset field carries. Behaviour unique to one family's blocks
is tested in that family's own test file.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass

import pytest
import torch
import yaml
from torch import nn

from archlab.measurement.flops import MacCount, count_macs, count_params
from archlab.models import (
    FAMILIES,
    Family,
    Preset,
    build_model,
    cfg_from_dict,
    config_of,
    find_preset,
    get_family,
    load_config,
)
from archlab.space import SPACES_DIR, list_spaces, load_space_text

FAMILY_LIST = list(FAMILIES.values())
FAMILY_IDS = list(FAMILIES)
PRESETS = [(family, name) for family in FAMILY_LIST for name in family.presets]
PRESET_IDS = [f"{family.name}/{name}" for family, name in PRESETS]

MACS_TOLERANCE = 0.05  # MACs within 5% of the paper's figure (or equal at its printed precision)
# Models run at their own resolution (batch 1) and at the next multiple of 32 (batch 2), where
# windows, pooled grids and meta kernels no longer fit the maps exactly.
OTHER_RESOLUTION_STEP = 32
SPACE_LOAD_HANG_S = 120  # a guard against hanging; load times: bench/space_load.py


@dataclass
class Built:
    """A preset built from its plain config dict, with its counts and its output at its own size."""

    family: Family
    name: str
    preset: Preset
    config: dict
    model: nn.Module
    params: int
    macs: MacCount
    output: torch.Tensor  # of the MAC count's traced forward: batch 1 at the preset's resolution


@pytest.fixture(scope="module", params=PRESETS, ids=PRESET_IDS)
def built(request: pytest.FixtureRequest) -> Built:
    """Each preset once (pytest groups the tests by preset, so one model is alive at a time).

    The model is built from the JSON text of the preset's config dict, so every figure below is
    checked on the round-tripped config, not only on the dataclass in ``PRESETS``.
    """
    family, name = request.param
    preset = family.presets[name]
    config = config_of(preset.cfg, family.name)
    torch.manual_seed(0)
    model = build_model(json.loads(json.dumps(config))).eval()
    outputs: list[torch.Tensor] = []
    hook = model.register_forward_hook(lambda _m, _i, out: outputs.append(out.detach().clone()))
    try:
        macs = count_macs(model, preset.resolution)
    finally:
        hook.remove()
    assert outputs, "the MAC count did not run the model"
    return Built(family, name, preset, config, model, count_params(model), macs, outputs[-1])


def _assert_runs(model: nn.Module, resolution: int, batch: int, num_classes: int) -> None:
    with torch.inference_mode():
        out = model(torch.randn(batch, 3, resolution, resolution))
    assert out.shape == (batch, num_classes), (resolution, batch)
    assert torch.isfinite(out).all(), (resolution, batch)


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize("family", FAMILY_LIST, ids=FAMILY_IDS)
def test_registry_entry_is_the_family_module(family: Family) -> None:
    assert get_family(family.name) is family
    module = importlib.import_module(f"archlab.models.{family.name}")
    assert family.model_cls.__module__ == family.cfg_cls.__module__ == module.__name__
    assert module.PRESETS is family.presets and family.presets
    assert family.title and family.paper
    with pytest.raises(ValueError, match="resolution"):  # none runs below its total stride
        next(iter(family.presets.values())).cfg.check_resolution(16)


@pytest.mark.parametrize(("family", "name"), PRESETS, ids=PRESET_IDS)
def test_preset_is_found_by_name_and_its_data_is_consistent(family: Family, name: str) -> None:
    preset = family.presets[name]
    found = find_preset(name.replace("_", "-").upper())
    assert found[0] is family and found[1] == name and found[2] is preset
    assert isinstance(preset.cfg, family.cfg_cls)
    assert preset.resolution % 32 == 0
    preset.cfg.check_resolution(preset.resolution)
    if preset.published is None:  # our own design: no paper figures to compare against
        assert preset.params_m is None and preset.macs_g is None and preset.top1 is None
        assert not preset.reconstructed and preset.note
    if preset.macs_g is not None and not preset.macs_reproducible:
        assert preset.note, "an unreproducible figure needs a note"


# ---------------------------------------------------------------- config round trip


def test_config_round_trips_through_a_plain_dict(built: Built) -> None:
    family, preset, config = built.family, built.preset, built.config
    assert isinstance(built.model, family.model_cls)
    assert built.model.cfg == preset.cfg
    assert config_of(built.model) == config  # the family is found from the model's config class
    assert next(iter(config)) == "family" and config["family"] == family.name
    assert json.loads(json.dumps(config)) == config
    assert yaml.safe_load(yaml.safe_dump(config, sort_keys=False)) == config
    assert cfg_from_dict(family.cfg_cls, config) == preset.cfg
    loaded_family, cfg = load_config(config)
    assert loaded_family is family and cfg == preset.cfg
    loaded_family, cfg = load_config({"preset": built.name})
    assert loaded_family is family and cfg == preset.cfg


# ---------------------------------------------------------------- presets against the papers


def test_preset_params_match_published(built: Built) -> None:
    preset = built.preset
    if preset.params_m is None:
        pytest.skip(f"{built.name}: no published parameter count")
    tolerance = preset.params_tolerance
    params_m = built.params / 1e6
    assert abs(params_m / preset.params_m - 1) < tolerance, (
        f"{built.name}: {params_m:.3f}M vs published {preset.params_m}M"
    )


def test_preset_macs_have_no_uncounted_op(built: Built) -> None:
    assert built.macs.unsupported_ops == {}, f"{built.name}: {built.macs.unsupported_ops}"
    assert built.macs.total > 0


def test_preset_macs_match_published_where_reproducible(built: Built) -> None:
    preset = built.preset
    if preset.macs_g is None or not preset.macs_reproducible:
        pytest.skip(f"{built.name}: no reproducible published MACs")
    macs_g = built.macs.total / 1e9
    # Within 5%, or equal at the printed precision: ParC-MobileNetV2's "0.3 G" (one digit) is
    # conv + linear (302 M here); fvcore's BatchNorm count brings the total to 0.315 G.
    decimals = len(str(preset.macs_g).partition(".")[2])
    agrees = abs(macs_g / preset.macs_g - 1) < MACS_TOLERANCE or (
        round(macs_g, decimals) == preset.macs_g
    )
    assert agrees, f"{built.name}: {macs_g:.4f} G vs published {preset.macs_g} G"


# ---------------------------------------------------------------- forward at two resolutions


def test_preset_runs_at_its_own_resolution(built: Built) -> None:
    # the MAC count's forward (batch 1 at the preset's resolution), not run a second time
    assert built.output.shape == (1, 1000)
    assert torch.isfinite(built.output).all()


def test_preset_runs_32_px_above_its_resolution_at_batch_2(built: Built) -> None:
    resolution = built.preset.resolution + OTHER_RESOLUTION_STEP
    built.preset.cfg.check_resolution(resolution)
    _assert_runs(built.model, resolution, 2, 1000)


# ---------------------------------------------------------------- the search space


@pytest.mark.timeout(SPACE_LOAD_HANG_S)
@pytest.mark.parametrize("family", FAMILY_LIST, ids=FAMILY_IDS)
def test_space_file_loads_and_its_default_runs_at_two_resolutions(family: Family) -> None:
    # random archs of every space, at the same two resolutions: test_space_samples.py
    assert family.name in list_spaces()
    path = SPACES_DIR / f"{family.name}.yaml"
    text = path.read_text()
    space = load_space_text(text, family.name, str(path))  # uncached: validates every combination
    assert space.family is family and space.knobs
    assert space.resolution % 32 == 0
    cfg = space.to_cfg(space.default())
    torch.manual_seed(0)
    model = family.build(cfg, num_classes=10).eval()
    for resolution, batch in ((space.resolution, 1), (space.resolution + OTHER_RESOLUTION_STEP, 2)):
        cfg.check_resolution(resolution)
        _assert_runs(model, resolution, batch, 10)
