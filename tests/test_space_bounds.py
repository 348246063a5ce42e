"""Hostile space files: each is refused (or loaded) within 200 MB, naming the key.

None may hang: each test has a timeout far above the milliseconds a refusal takes (pytest-timeout),
so a load that blows up exponentially fails the test instead of stalling the suite. How long
loading takes is a benchmark's figure (``bench/space_load.py``), not a test's."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from archlab.cli import app
from archlab.space import SpaceError, load_space, load_space_text
from archlab.space.bounded_yaml import MAX_BYTES
from archlab.space.knobs import Knob

BASE = "family: plgvit\nbase: lw_plgvit_a\n"
HANG_S = 30  # a guard against hanging: a refusal takes milliseconds


def _laughs(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return BASE + "\n".join(lines) + f"\nchoices:\n  ffn: *a{levels - 1}\n"


def _nested(levels: int) -> str:
    return BASE + "choices:\n  ffn: " + "[" * levels + "ccf" + "]" * levels + "\n"


def _choice_list(n: int) -> str:
    return BASE + "choices:\n  stages.0.dim: [" + ", ".join(str(i) for i in range(n)) + "]\n"


def largest_allowed_choices() -> str:
    """Four knobs of 256 choices each: the most a space file may list."""
    ratios = ", ".join(str(1 + i / 256) for i in range(256))
    return BASE + "choices:\n" + "".join(f"  stages.{s}.mlp_ratio: [{ratios}]\n" for s in range(4))


def _range(low: int, high: int, knob: str = "stages.2.depth") -> str:
    return BASE + f"choices:\n  {knob}: {{low: {low}, high: {high}}}\n"


def _bounded(load: Callable[[], object], megabytes: float = 200) -> None:
    """Run ``load`` (which must raise SpaceError) with its memory traced."""
    tracemalloc.start()
    try:
        with pytest.raises(SpaceError):
            load()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    assert peak < megabytes, f"peak {peak:.0f} MB"


HOSTILE: list[tuple[str, Callable[[], str], str, str]] = [
    ("billion laughs", _laughs, "a0", "anchors and aliases are not allowed"),
    ("merge key", lambda: BASE + "x: &x {a: 1}\nfixed: {<<: *x}\n", "x", "anchors"),
    ("20,000 levels", lambda: _nested(20_000), "choices.ffn", "nested deeper than 12"),
    ("1e6 choices", lambda: _choice_list(1_000_000), "<file>", "longer than 64 kB"),
    ("2,000 choices", lambda: _choice_list(2_000), "choices.stages.0.dim", "more than 1024"),
    ("300 choices", lambda: _choice_list(300), "choices.stages.0.dim", "300 choices; at most 256"),
    ("range 1..1e12", lambda: _range(1, 10**12), "choices.stages.2.depth", "more than 100,000"),
    ("depth 1..1e8", lambda: _range(1, 10**8), "choices.stages.2.depth", "more than 100,000"),
    (
        "inf range",
        lambda: BASE + "choices:\n  stages.0.mlp_ratio: {low: 0, high: .inf}\n",
        "choices.stages.0.mlp_ratio",
        "finite",
    ),
    ("zero step", lambda: _range(1, 3).replace("high: 3", "high: 3, step: 0"), "", "step must"),
    ("huge integer", lambda: BASE + "resolution: " + "9" * 5000 + "\n", "<file>", "not valid"),
    ("family list", lambda: "family: [plgvit]\nchoices: {ffn: [ccf]}\n", "family", "not a fam"),
    ("fixed int key", lambda: BASE + "fixed: {1: 2}\nchoices: {ffn: [ccf]}\n", "fixed.1", "text"),
    ("extra list", lambda: BASE + "extra: [1]\nchoices: {ffn: [ccf]}\n", "extra", "mapping"),
    (
        "resolution",
        lambda: BASE + "resolution: 65536\nchoices: {ffn: [ccf]}\n",
        "resolution",
        "multiple of 32 from 32 to 2048",
    ),
]


@pytest.mark.timeout(HANG_S)
@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [pytest.param(make, key, problem, id=name) for name, make, key, problem in HOSTILE],
)
def test_hostile_space_text_is_refused_naming_the_key(
    text: Callable[[], str], key: str, problem: str
) -> None:
    content = text()
    _bounded(lambda: load_space_text(content, "hostile"))
    with pytest.raises(SpaceError, match=problem) as info:
        load_space_text(content, "hostile")
    if key:
        assert info.value.key == key


@pytest.mark.timeout(4 * HANG_S)
def test_hostile_space_file_is_refused(tmp_path: Path) -> None:
    for name, make, _, problem in HOSTILE:
        path = tmp_path / f"{name.replace(' ', '_').replace(',', '')}.yaml"
        path.write_text(make())
        _bounded(lambda: load_space(path))
        with pytest.raises(SpaceError, match=problem):
            load_space(path)


def test_a_space_file_must_be_a_small_regular_file(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "#" * MAX_BYTES)
    with pytest.raises(SpaceError, match="longer than 64 kB"):
        load_space(big)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(SpaceError, match="not a regular file"):
        load_space(folder)


def test_a_wide_range_is_checked_by_points_never_listed_whole() -> None:
    knob = Knob("d", low=1, high=100_001, step=1)
    points = knob.checked_values()
    assert points[0] == 1 and points[-1] == 100_001 and len(points) == 17
    assert Knob("s", low=0, high=10, step=3).checked_values() == [0, 3, 6, 9]


@pytest.mark.timeout(HANG_S)
def test_largest_allowed_choice_lists_load() -> None:
    space = load_space_text(largest_allowed_choices(), "wide")
    assert len(space.knobs["stages.0.mlp_ratio"].values or ()) == 256


@pytest.mark.timeout(2 * HANG_S)
def test_a_study_holding_a_hostile_space_fails_its_worker(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(study_name="planted", storage=url)
    study.set_user_attr("archlab_spec", {"space": "x", "space_yaml": _laughs(), "seed": 0})
    result = CliRunner().invoke(app, ["worker", "--study", "planted", "--storage", url])
    assert result.exit_code == 2 and "anchors and aliases are not allowed" in result.output
