from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archlab.space import Knob, SpaceError, list_spaces, load_space, load_space_text


@pytest.mark.parametrize("name", list_spaces())
def test_shipped_space_loads_and_samples_validate(name: str) -> None:
    # Building and running samples is covered by test_space_samples.py; here only the configs.
    space = load_space(name)
    assert space.knobs and space.family.name
    for arch in [space.default(), *(space.sample(seed) for seed in range(20))]:
        assert set(arch) == set(space.knobs)
        space.to_cfg(arch)


@pytest.mark.parametrize("name", list_spaces())
def test_default_arch_builds_and_runs(name: str) -> None:
    space = load_space(name)
    model = space.family.build(space.to_cfg(space.default()), num_classes=10).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, space.resolution, space.resolution))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


def test_arch_is_flat_and_sample_is_seeded() -> None:
    space = load_space("plgvit")
    assert space.sample(3) == space.sample(3)
    assert all(isinstance(v, (int, float, str, type(None))) for v in space.sample(1).values())


def test_first_valid_skips_impossible_archs_and_stops_at_n() -> None:
    space = load_space("plgvit")
    good = [space.default(), space.sample(1), space.sample(2)]
    bad = {**space.default(), "stages.0.local_heads": 5}  # the width is not divisible by 5
    archs = iter([bad, good[0], bad, good[1], good[2]])
    found = space.first_valid(archs, 2)
    assert [arch for arch, _ in found] == good[:2]
    assert [cfg for _, cfg in found] == [space.to_cfg(a) for a in good[:2]]
    assert next(archs) == good[2]  # nothing drawn after the n-th
    assert space.first_valid([bad], 3) == [] and space.first_valid(good, 0) == []


def test_random_valid_draws_the_same_archs_from_consecutive_seeds() -> None:
    space = load_space("plgvit")
    found = space.random_valid(3, first_seed=7)
    assert [arch for arch, _ in found] == [space.sample(seed) for seed in (7, 8, 9)]
    assert found == space.random_valid(3, first_seed=7)


def test_space_by_path_equals_by_name() -> None:
    by_name = load_space("plgvit")
    by_path = load_space(Path(by_name.source))
    assert by_name.knobs == by_path.knobs


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


BASE = "family: plgvit\nbase: lw_plgvit_a\n"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("family: [unclosed\n", "<file>", "not valid YAML"),
        ("- a\n- b\n", "<file>", "must be a mapping"),
        ("family: resnet\nchoices: {a: [1]}\n", "family", "not a family"),
        (BASE, "choices", "non-empty mapping"),
        (BASE + "choices:\n  stages.0.dimm: [32]\n", "choices.stages.0.dimm", "no field 'dimm'"),
        (BASE + "choices:\n  stages.7.dim: [32]\n", "choices.stages.7.dim", "not an index"),
        (BASE + "choices:\n  stages.0.dim: []\n", "choices.stages.0.dim", "empty list"),
        (
            BASE + "choices:\n  stages.0.depth: {low: 3, high: 1}\n",
            "choices.stages.0.depth",
            "low 3 is above high 1",
        ),
        (BASE + "choices:\n  stages.0.depth: {min: 1}\n", "choices.stages.0.depth", "needs 'low'"),
        (BASE + "choices:\n  stages.0.dim: [[1, 2]]\n", "choices.stages.0.dim", "must be numbers"),
        (BASE + "resolution: 100\nchoices:\n  ffn: [ccf]\n", "resolution", "multiple of 32"),
        (BASE + "colour: red\nchoices:\n  ffn: [ccf]\n", "colour", "unknown key"),
        (
            BASE + "choices:\n  stages.0.local_heads: [1, 5]\n",
            "choices (stages.0)",
            "stages.0.local_heads=5 is impossible: .*not divisible by local_heads=5",
        ),
        (BASE + "choices:\n  ffn: [mlp]\n", "choices (<global>)", "ffn='mlp' is impossible"),
        ("family: plgvit\nbase: nope\nchoices:\n  ffn: [ccf]\n", "base", "unknown preset"),
        (
            BASE + "choices:\n  stages.3.global_window: [7, 9]\n",
            "choices (stages.3)",
            "global_window=9 exceeds the stage's 7×7 map",
        ),
    ],
)
def test_malformed_space_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SpaceError, match=problem) as info:
        load_space(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert str(path) in str(info.value)


def test_missing_space_lists_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="shipped spaces: .*plgvit"):
        load_space("no-such-space")
    with pytest.raises(SpaceError, match="file not found"):
        load_space(tmp_path / "missing.yaml")


def test_to_config_rejects_unknown_knob() -> None:
    space = load_space("plgvit")
    with pytest.raises(KeyError, match="not a knob"):
        space.to_config({"stages.0.width": 3})


def test_space_from_text_equals_space_from_file(tiny_space_path: Path) -> None:
    from_file = load_space(tiny_space_path)
    from_text = load_space_text(tiny_space_path.read_text(), "tiny_plgvit")
    assert from_text.knobs == from_file.knobs and from_text.base_config == from_file.base_config
    assert from_text.resolution == from_file.resolution


def test_space_from_text_is_validated_and_names_its_source() -> None:
    with pytest.raises(SpaceError, match=r"study 's': family: 'nope' is not a family"):
        load_space_text("family: nope\nchoices: {ffn: [ccf]}", "x", "study 's'")
    with pytest.raises(SpaceError, match=r"<x>: <file>: not valid YAML"):
        load_space_text("family: [", "x")


@pytest.mark.parametrize("name", list_spaces())
def test_sampling_a_shipped_space_never_gives_an_impossible_arch(name: str) -> None:
    # Loading checks every combination within a stage group; a constraint across groups would
    # only show here, and would waste searches on pruned trials. Optuna's samplers draw from the
    # same per-knob choices, so uniform samples cover what they can propose.
    space = load_space(name)
    impossible = []
    for seed in range(300):
        try:
            space.to_cfg(space.sample(seed))
        except ValueError as err:
            impossible.append(str(err))
    assert not impossible, impossible[:3]


def test_corners_put_every_numeric_knob_at_its_low_and_high_end(tiny_space_path: Path) -> None:
    from archlab.measurement.flops import count_params

    space = load_space(tiny_space_path)
    small, large = space.corners()
    assert small == {**small, "stages.2.dim": 32, "stages.2.depth": 1, "stages.3.dim": 48}
    assert large == {**large, "stages.2.dim": 48, "stages.2.depth": 2, "stages.3.dim": 64}
    assert small["ffn"] == large["ffn"] == "ccf_plus"  # words keep their default
    sizes = [count_params(space.family.build(space.to_cfg(a))) for a in (small, large)]
    assert sizes[0] < sizes[1]


def test_corners_order_null_first_and_keep_words_at_their_default() -> None:
    from archlab.space.knobs import Knob, extreme

    assert extreme(Knob("e", values=(384, None, 768)), min) is None
    assert extreme(Knob("e", values=(384, None, 768)), max) == 768
    assert extreme(Knob("f", values=("ccf_plus", "ccf")), max) == "ccf_plus"
    assert extreme(Knob("d", low=1, high=8, step=2), max) == 7


@pytest.mark.parametrize(
    ("knob", "allowed", "refused"),
    [
        (Knob("k", values=(32, 48)), [32, 48, 48.0], [40, "32", True, None]),
        (Knob("k", values=(True, False)), [True, False], [1, 0, "true"]),
        (Knob("k", values=(None, 0.5)), [None, 0.5], [0, "null"]),
        (Knob("k", low=2, high=8, step=2), [2, 4, 8, 6.0], [3, 10, 0, 4.5, True, "4"]),
        (Knob("k", low=0.25, high=1.0), [0.25, 0.6, 1], [0.2, 1.1, False]),
        (Knob("k", low=0.0, high=1.0, step=0.25), [0.0, 0.75], [0.3]),
    ],
)
def test_a_knob_allows_exactly_its_values(
    knob: Knob, allowed: list[object], refused: list[object]
) -> None:
    assert all(knob.allows(v) for v in allowed)
    assert not any(knob.allows(v) for v in refused)


def test_check_arch_names_every_value_outside_the_space(tiny_space_path: Path) -> None:
    space = load_space(tiny_space_path)
    space.check_arch(space.sample(0))
    space.check_arch({})  # a partial arch is checked knob by knob
    with pytest.raises(ValueError) as err:
        space.check_arch({"stages.2.depth": 3, "stages.3.dim": 64, "ffn": "mlp", "x": 1})
    message = str(err.value)
    assert message.startswith("not an arch of space 'tiny_plgvit'")
    assert "'x' is not a knob" in message
    assert "stages.2.depth=3 is not in its range [1, 2]" in message
    assert "ffn='mlp' is not in its choices {ccf_plus, ccf}" in message
    assert "stages.3.dim" not in message
